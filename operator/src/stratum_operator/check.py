"""``stratum-operator check``: is the installed operator working? (the chart's ``helm test``)

Three things a pool operator needs to hold after an install or upgrade, each a line:
the API server serves the StratumPool resource, this identity may list pools (the
chart's RBAC is bound), and the operator process answers its liveness endpoint.
Exit 0 when all hold; 1, with the failing line, when one doesn't.
"""

from __future__ import annotations

import asyncio

import aiohttp
import kopf

from stratum_operator.builders.naming import GROUP, PLURAL, VERSION
from stratum_operator.k8s.errors import ApiError
from stratum_operator.k8s.session import ApiSession

TIMEOUT_S = 10.0


async def _checks(health_url: str) -> list[tuple[bool, str]]:
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        return [(False, "no credentials: neither a service account nor a kubeconfig")]
    api = ApiSession(info)
    results = []
    try:
        await api.request("GET", f"/apis/{GROUP}/{VERSION}")
        results.append((True, f"the API server serves {GROUP}/{VERSION}"))
        await api.request("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}", params={"limit": "1"})
        results.append((True, f"this identity may list {PLURAL}"))
    except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
        results.append((False, f"the API server: {exc}"))
    finally:
        await api.close()
    try:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(health_url) as r:
            results.append((r.status == 200, f"the operator at {health_url}: HTTP {r.status}"))
    except (aiohttp.ClientError, TimeoutError) as exc:
        results.append((False, f"the operator at {health_url}: {type(exc).__name__} {exc}"))
    return results


def run(health_url: str) -> int:
    results = asyncio.run(_checks(health_url))
    for ok, line in results:
        print(("ok    " if ok else "FAIL  ") + line)
    return 0 if all(ok for ok, _ in results) else 1
