"""kopf handlers: thin. Each one only hands the StratumPool to ``reconcile``.

Create, update and resume converge at once; a timer converges again every few seconds
(so a child deleted or edited by hand comes back) and reads the pods for status and
writer scaling. Deleting a StratumPool: its spool claims are drained first, while our
own finalizer holds it (``deletion.py``); then every child, which carries an owner
reference, goes with it.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from stratum_operator import deletion, metrics
from stratum_operator.k8s import session
from stratum_operator.reconcile import reconcile

GROUP, VERSION, PLURAL = "stratum.io", "v1alpha1", "stratumpools"
TIMER_INTERVAL_S = 10.0


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # A watch that silently stops delivering events is kopf's best-known failure mode:
    # the server ends each watch after 4.5 minutes and the client gives up at 5, so a
    # dead stream is noticed and re-established, never trusted forever.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.posting.level = logging.INFO
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo:
    info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    if info is None:
        raise kopf.LoginError("no credentials: neither a service account nor a kubeconfig")
    session.configure(info)
    return info


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
async def converge(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Any, **_: Any
) -> None:
    with metrics.reconciling("event"):
        await reconcile(body, patch, memo, logger, scale=False)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TIMER_INTERVAL_S, initial_delay=1.0)
async def converge_and_scale(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Any, **_: Any
) -> None:
    with metrics.reconciling("timer"):
        await reconcile(body, patch, memo, logger, scale=True)


# optional: kopf adds no finalizer of its own for this; ours exists only while the pool
# has spool claims, and it is what keeps a pool being deleted around for this handler
@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
async def drain_before_delete(body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    with metrics.reconciling("delete"):
        await deletion.finalize(body, memo, logger)


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    await session.current().close()
