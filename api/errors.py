"""Every 4xx names the field and says what is wrong, in one shape:
``{"error": code, "message": "...", "errors": [{"field": "...", "message": "..."}]}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.errors import Conflict, Invalid, NotFound, ServiceError, Unavailable


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": error, "message": message, **extra}
        if field:
            self.body["errors"] = [{"field": field, "message": message}]


#: what each kind of service refusal is in HTTP
STATUS: dict[type[ServiceError], int] = {NotFound: 404, Invalid: 422, Conflict: 409, Unavailable: 503}


def from_service(err: ServiceError) -> ApiError:
    """A service's refusal as the API's error (status by kind, the field named)."""
    status = next((code for kind, code in STATUS.items() if isinstance(err, kind)), 409)
    return ApiError(status, err.code, err.message, field=err.field, **err.extra)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """("body", "lines", 1, "sku") -> "lines[1].sku" """
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header"):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        api = from_service(exc)
        return JSONResponse(api.body, status_code=api.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": field_path(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"error": "validation_error", "message": message, "errors": errors}, status_code=422)
