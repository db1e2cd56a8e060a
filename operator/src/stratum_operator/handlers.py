"""kopf handlers: thin. kopf watches; ``pool_loop.Pools`` decides when each pool is
reconciled and writes what it found.

Only watching handlers are used (``kopf.on.event``): kopf then stores nothing on a pool,
adds no finalizer of its own (a timer or a mandatory deletion handler would: a pool
could not be deleted once the operator was uninstalled), and logs nothing per event.
The children are watched too, by our managed-by label, so a Service deleted by hand
comes back at once and a Job's end is seen when it happens, not at the next tick.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from stratum_operator.builders import naming
from stratum_operator.images import ImageDefaults
from stratum_operator.k8s import session
from stratum_operator.pool_loop import Pools

GROUP, VERSION, PLURAL = naming.GROUP, naming.VERSION, naming.PLURAL
OURS = {"app.kubernetes.io/managed-by": naming.MANAGED_BY}
CHILDREN = (("apps", "v1", "statefulsets"), ("", "v1", "services"), ("", "v1", "configmaps"),
            ("policy", "v1", "poddisruptionbudgets"), ("batch", "v1", "jobs"),
            ("batch", "v1", "cronjobs"))  # fmt: skip

# the chart's image settings, read once: what a pool's spec leaves unset
_pools = Pools(ImageDefaults.from_env(os.environ))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # A watch that silently stops delivering events is kopf's best-known failure mode:
    # the server ends each watch after 4.5 minutes and the client gives up at 5, so a
    # dead stream is noticed and re-established, never trusted forever.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.posting.enabled = False  # our Events are posted by pool_loop, under our name
    settings.posting.level = logging.WARNING


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo:
    info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    if info is None:
        raise kopf.LoginError("no credentials: neither a service account nor a kubeconfig")
    session.configure(info)
    return info


@kopf.on.event(GROUP, VERSION, PLURAL)
async def pool_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
    await _pools.pool_event(type, dict(body))


def _watch_children() -> None:
    for group, version, plural in CHILDREN:

        @kopf.on.event(group, version, plural, labels=OURS, id=f"child-{plural}")
        def child_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
            _pools.child_event(type, dict(body))


_watch_children()


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    await _pools.stop()
    await session.current().close()
