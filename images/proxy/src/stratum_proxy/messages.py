"""Stratum V1 framing: newline-delimited JSON-RPC 1.0, parsed without any I/O.

Miner connections are untrusted, so parsing never raises anything but ProtocolError,
and every ProtocolError carries the JSON-RPC error the miner gets back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

# Stratum params are a flat list with at most an object or a list of hashes inside
# (configure, notify's merkle branch). A line nested deeper than this is refused where it
# is parsed, so nothing deeper ever reaches the encoder (orjson refuses past 254 levels).
MAX_NESTING = 16

JsonId = int | str | None


class ProtocolError(Exception):
    def __init__(self, code: int, message: str, request_id: JsonId = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id

    def response(self) -> bytes:
        return encode_response(self.request_id, None, [self.code, self.message, None])


@dataclass(frozen=True, slots=True)
class Request:
    """A call (``id`` set) or a notification (``id`` None)."""

    id: JsonId
    method: str
    params: list[Any]


@dataclass(frozen=True, slots=True)
class Response:
    id: JsonId
    result: Any
    error: Any


Message = Request | Response


def parse(line: bytes) -> Message:
    """One line (without its newline) to a message."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ProtocolError(PARSE_ERROR, "parse error: not JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError(INVALID_REQUEST, "invalid request: not a JSON object")
    msg_id = obj.get("id")
    if (msg_id is not None and not isinstance(msg_id, int | str)) or isinstance(msg_id, bool):
        raise ProtocolError(INVALID_REQUEST, "invalid request: id must be an integer or string")
    if isinstance(msg_id, str) and len(msg_id) > 128:
        raise ProtocolError(INVALID_REQUEST, "invalid request: id longer than 128 characters")
    if _deeper_than(obj, MAX_NESTING):
        raise ProtocolError(
            INVALID_REQUEST, f"invalid request: nested deeper than {MAX_NESTING} levels", msg_id
        )
    method = obj.get("method")
    if method is not None:
        if not isinstance(method, str) or not method or len(method) > 128:
            raise ProtocolError(INVALID_REQUEST, "invalid request: bad method", msg_id)
        params = obj.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            raise ProtocolError(INVALID_REQUEST, "invalid request: params must be a list", msg_id)
        return Request(msg_id, method, params)
    if "result" in obj or "error" in obj:
        return Response(msg_id, obj.get("result"), obj.get("error"))
    raise ProtocolError(INVALID_REQUEST, "invalid request: neither a call nor a reply", msg_id)


def _deeper_than(obj: dict[str, Any], limit: int) -> bool:
    """True when containers nest past ``limit`` levels (the top object is level 1)."""
    level: list[Any] = [obj]
    for _ in range(limit):
        inner: list[Any] = []
        for item in level:
            values = item.values() if isinstance(item, dict) else item
            inner.extend(v for v in values if isinstance(v, list | dict))
        if not inner:
            return False
        level = inner
    return True


def encode_request(msg_id: JsonId, method: str, params: list[Any]) -> bytes:
    return orjson.dumps({"id": msg_id, "method": method, "params": params}) + b"\n"


def encode_response(msg_id: JsonId, result: Any, error: Any) -> bytes:
    return orjson.dumps({"id": msg_id, "result": result, "error": error}) + b"\n"


def stratum_error(code: int, message: str) -> list[Any]:
    return [code, message, None]


def error_code(error: Any) -> tuple[int, str]:
    """(code, message) from a Stratum error, whatever shape the pool used.

    The message is empty when the pool gave none (``"error": null`` with a false result),
    so the caller's fallback text applies; never the string "None".
    """
    code: Any = 20
    message: Any = None
    if isinstance(error, list) and error:
        code, message = error[0], error[1] if len(error) > 1 else None
    elif isinstance(error, dict):
        code, message = error.get("code", 20), error.get("message")
    elif error is not None and error != []:
        message = error
    if not isinstance(code, int) or isinstance(code, bool):
        code = 20
    return code, "" if message is None else str(message)
