"""Every API error is JSON `{"error": {"code": ..., "reason": ...}}`.

Handlers map onward's exceptions to HTTP statuses in one place, so routes raise
domain errors (`InputRejected`, `ConversationNotFound`, …) and never build error
responses themselves. `error_responses` documents the same shapes in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.service import RPCError

from onward.exceptions import (
    ApiError,
    ConversationBusy,
    ConversationNotFound,
    InputRejected,
    UnknownGoalError,
)


class ErrorDetail(BaseModel):
    code: str
    """Stable machine-readable code, e.g. `not_found`, `input_rejected`."""
    reason: str
    """A sentence for humans: what was wrong and, where possible, what to do."""
    decision: str | None = None
    """For an approval decided otherwise already (409): the decision that stands."""


class ErrorBody(BaseModel):
    """The body of every non-2xx response."""

    error: ErrorDetail


def not_found(conversation_id: str) -> ApiError:
    """The one answer for unknown, deleted and other users' conversations alike."""
    return ApiError(404, "not_found", f"no conversation `{conversation_id}`")


_DESCRIPTIONS: dict[int, str] = {
    400: "The request body could not be parsed (e.g. it is not UTF-8).",
    401: "Missing or unknown bearer token.",
    404: "No such conversation (or not yours: the two are indistinguishable).",
    409: "The conversation refused the input (stale approval, ended conversation, …).",
    413: "The request body is larger than the API accepts.",
    422: "The request is invalid (schema, message too long, key reused for another body, …).",
    429: "A per-user limit was reached, or the conversation is busy; `Retry-After` says "
    "when to try again.",
    503: "Temporal is not reachable, or no worker answers the conversation "
    "(`worker_unavailable`); retry later.",
}
_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "input_rejected",
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limited",
    503: "temporal_unavailable",
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until trying again can succeed.",
        "schema": {"type": "string"},
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for `statuses`, all with the `ErrorBody` schema."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


def error_response(
    status: int,
    code: str,
    reason: str,
    headers: dict[str, str] | None = None,
    *,
    decision: str | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, reason=reason, decision=decision))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _validation_reason(errors: Sequence[Any]) -> str:
    parts: list[str] = []
    for err in errors[:5]:
        if err.get("type") == "json_invalid":
            detail = err.get("ctx", {}).get("error", "")
            parts.append(f"the request body is not valid JSON ({detail})")
            continue
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.reason, exc.headers)


async def _input_rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputRejected)
    decision = exc.details.get("decision")
    code = "already_decided" if decision else "input_rejected"
    return error_response(409, code, exc.reason, decision=decision)


async def _conversation_busy(request: Request, exc: Exception) -> JSONResponse:
    return error_response(429, "conversation_busy", str(exc), headers={"Retry-After": "1"})


async def _conversation_not_found(request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "not_found", str(exc))


async def _unknown_goal(request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "unknown_goal", str(exc))


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", _validation_reason(exc.errors()))


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method the request's path supports. Starlette's own 405 names only those
    of the first route on the path (a path with GET and POST has two routes)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return error_response(exc.status_code, code, exc.detail, headers)


async def _temporal_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Temporal RPC failures that no route turned into a domain error: the service
    # (not the request) is the problem, so 503 lets clients retry.
    return error_response(503, "temporal_unavailable", f"Temporal: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on `app`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InputRejected, _input_rejected)
    app.add_exception_handler(ConversationBusy, _conversation_busy)
    app.add_exception_handler(ConversationNotFound, _conversation_not_found)
    app.add_exception_handler(UnknownGoalError, _unknown_goal)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RPCError, _temporal_unavailable)
