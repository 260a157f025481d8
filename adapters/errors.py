"""Errors every adapter raises. Activities turn them into Temporal failures:
a refusal is a business answer (non-retryable, typed); unavailability is retried."""

from __future__ import annotations


class ExternalError(Exception):
    def __init__(self, system: str, operation: str, message: str, *, code: str | None = None) -> None:
        super().__init__(f"{system}.{operation}: {message}")
        self.system = system
        self.operation = operation
        self.message = message
        self.code = code


class ExternalRefusal(ExternalError):
    """The outside system answered and said no (declined, not enough points, invalid address)."""


class ExternalUnavailable(ExternalError):
    """The outside system could not answer (timeout, connection refused, 5xx): retry later."""


class ExternalRateLimited(ExternalUnavailable):
    """The outside system refused for now because of its rate limit (HTTP 429): retry after
    ``retry_after_s`` seconds (from ``Retry-After`` or the system's own header), not sooner."""

    def __init__(self, system: str, operation: str, message: str, *, retry_after_s: float, code: str | None = None) -> None:
        super().__init__(system, operation, message, code=code)
        self.retry_after_s = retry_after_s
