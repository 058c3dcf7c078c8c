"""Mapping pydantic-ai and transport errors to onward's retry classes."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import cast

from pydantic_ai.exceptions import (
    ContentFilterError,
    ModelAPIError,
    ModelHTTPError,
    ModelQuotaExceededError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    UnexpectedModelBehavior,
)
from pydantic_ai.exceptions import UserError as PaiUserError

from onward.agent.messages import Usage
from onward.exceptions import (
    MalformedModelOutput,
    ModelError,
    ModelPermanentError,
    ModelRateLimited,
    ModelTransientError,
)


def retry_after(exc: ModelAPIError) -> float | None:
    """Seconds the provider asked to wait: pydantic-ai's parse, else the raw headers."""
    if exc.retry_after is not None:
        return max(0.0, exc.retry_after)
    headers = dict(exc.headers or {}) if isinstance(exc, ModelHTTPError) else {}
    # The SDK's own error (`__cause__`) keeps the HTTP response when pydantic-ai did not.
    raw: object = getattr(getattr(exc.__cause__, "response", None), "headers", None)
    if isinstance(raw, Mapping):
        for key, val in cast(Mapping[object, object], raw).items():
            headers.setdefault(str(key).lower(), str(val))
    if ms := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _from_status(status: int, exc: ModelAPIError) -> ModelError:
    message = f"{status} from provider: {exc}"
    if status == 429 and not isinstance(exc, ModelQuotaExceededError):
        return ModelRateLimited(message, retry_after_s=retry_after(exc))
    if status in (408, 409, 425) or status >= 500:
        return ModelTransientError(message, status=status)
    return ModelPermanentError(message)


def mapped_error(exc: Exception) -> Exception:
    """Map a pydantic-ai or transport error to onward's classes; others unchanged."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, ContentFilterError):
        return ModelPermanentError(f"the provider's content filter refused: {exc}")
    if isinstance(exc, ModelHTTPError):
        return _from_status(exc.status_code, exc)
    if isinstance(exc, ModelRateLimitError):
        return ModelRateLimited(str(exc), retry_after_s=retry_after(exc))
    if isinstance(exc, ModelQuotaExceededError | ModelRequestRejectedError):
        return ModelPermanentError(str(exc))
    if isinstance(exc, ModelAPIError):
        # Connection errors, timeouts, unavailable and server errors: worth retrying.
        return ModelTransientError(str(exc) or type(exc).__name__)
    if isinstance(exc, UnexpectedModelBehavior):
        return MalformedModelOutput(
            f"unusable provider response: {exc.message}",
            usage=Usage(requests=1, cost_usd=None, cost_unknown_requests=1),
        )
    if isinstance(exc, PaiUserError):
        return ModelPermanentError(f"provider request refused: {exc}")
    if isinstance(exc, TimeoutError | ConnectionError):
        return ModelTransientError(str(exc) or type(exc).__name__)
    return exc


@asynccontextmanager
async def provider_errors() -> AsyncGenerator[None]:
    """Re-raise pydantic-ai and transport errors as onward's retry classes."""
    try:
        yield
    except Exception as exc:
        mapped = mapped_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc
