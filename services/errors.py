"""What a service refuses, as plain exceptions: the API maps each kind to an HTTP status
(``api.errors``: NotFound 404, Invalid 422, Conflict 409, Unavailable 503)."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """``code``: a stable machine word (``out_of_stock``); ``field``: the request field at fault."""

    def __init__(self, code: str, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.field, self.extra = code, message, field, extra


class NotFound(ServiceError):
    """No such order, return, reservation or task."""


class Invalid(ServiceError):
    """The request is malformed for the business (an unknown SKU, a store that does not exist)."""


class Conflict(ServiceError):
    """The request is well formed but the thing's state refuses it now (out of stock, already shipped)."""


class Unavailable(ServiceError):
    """A system Orkestr depends on (Temporal) does not answer: retry later."""
