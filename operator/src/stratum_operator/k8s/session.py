"""The one HTTP session to the API server, built from the credentials kopf logged in with."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from typing import Any

import aiohttp
import kopf

from stratum_operator.k8s.errors import error_for


class ApiSession:
    def __init__(self, info: kopf.ConnectionInfo) -> None:
        self.server = info.server.rstrip("/")
        self.headers = {"Accept": "application/json"}
        if info.token:
            self.headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        self.ssl = _ssl_context(info)
        self._session: aiohttp.ClientSession | None = None

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=30, connect=10),
                connector=aiohttp.TCPConnector(ssl=self.ssl, limit=32),
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Any:
        client = await self._client()
        headers = {"Content-Type": content_type} if body is not None else {}
        async with client.request(
            method, self.server + path, json=body, headers=headers, params=params
        ) as response:
            if response.status >= 400:
                # a Status object, or plain text ("404 page not found" for an API group
                # that isn't served, e.g. planetscale.com without the vitess-operator)
                text = await response.text()
                try:
                    data = json.loads(text)
                except ValueError:
                    data = text.strip()
                message = data.get("message", "") if isinstance(data, dict) else str(data)
                raise error_for(response.status, message)
            return await response.json(content_type=None)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    ctx = ssl.create_default_context(cafile=info.ca_path)
    if info.ca_data:
        ctx.load_verify_locations(cadata=base64.b64decode(info.ca_data).decode())
    cert, key = info.certificate_path, info.private_key_path
    if info.certificate_data and info.private_key_data:
        cert, key = _to_file(info.certificate_data), _to_file(info.private_key_data)
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return ctx


def _to_file(data: bytes | str) -> str:
    raw = data if isinstance(data, bytes) else data.encode()
    with tempfile.NamedTemporaryFile(delete=False, prefix="stratum-operator-") as fh:
        fh.write(base64.b64decode(raw))
        return fh.name


_current: ApiSession | None = None


def configure(info: kopf.ConnectionInfo) -> None:
    global _current  # noqa: PLW0603 - one process, one API server, set at login
    _current = ApiSession(info)


def current() -> ApiSession:
    if _current is None:
        raise RuntimeError("not logged in yet: the login handler configures the session")
    return _current
