"""The API server's refusals, typed once (as kopf's ``clients/errors.py`` does).

``ApiError`` is the root; the codes the operator acts on have their own class, so a
caller writes ``except NotFound`` and never compares status numbers.

- ``NotFound`` (404): the object, or the API group itself, isn't there.
- ``Conflict`` (409): a create of something that exists, or a stale write.
- ``Unprocessable`` (422): refused by validation, or a JSON patch's ``test`` failed.
"""

from __future__ import annotations

from http import HTTPStatus


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Unprocessable(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    HTTPStatus.NOT_FOUND: NotFound,
    HTTPStatus.CONFLICT: Conflict,
    HTTPStatus.UNPROCESSABLE_ENTITY: Unprocessable,
}


def error_for(status: int, message: str) -> ApiError:
    return _BY_STATUS.get(status, ApiError)(status, message)
