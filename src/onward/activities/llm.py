"""Model-call activities: a decision per step and a guardrail check per message.

They run on the dedicated llm task queue, whose workers cap concurrent calls. Errors
are classified here, once: rate limits wait for the provider's Retry-After, transient
errors back off, permanent ones are not retried and reach the user as a notice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from onward.activities.deltas import DeltaRelay
from onward.activities.transcripts import resolve_request
from onward.agent.activity_contracts import (
    ACTIVITY_DECIDE,
    ACTIVITY_GUARDRAIL,
    DecideRequest,
    DecideResult,
)
from onward.agent.events import EVENT_TOPIC_TYPE, TOPIC_EVENTS, StatusChanged, TokenDelta
from onward.agent.messages import Usage
from onward.agent.retry import model_retry_policy
from onward.config import Settings
from onward.exceptions import (
    ERR_MODEL_PERMANENT,
    ERR_MODEL_RATE_LIMITED,
    ERR_MODEL_TRANSIENT,
    ERR_TRANSCRIPT,
    MalformedModelOutput,
    ModelPermanentError,
    ModelRateLimited,
    ModelTransientError,
    TranscriptMissing,
    UserError,
)
from onward.models.base import GuardrailRequest, GuardrailResponse, Model, ModelRequest
from onward.observability import (
    METRIC_COST,
    METRIC_MODEL_CALLS,
    METRIC_MODEL_ERRORS,
    METRIC_TOKENS,
)
from onward.store.transcripts import TranscriptStore

T = TypeVar("T")
DELTA_BATCH_INTERVAL = timedelta(milliseconds=150)
SAME_ERROR_LIMIT = 3
"""Identical 500s in a row after which a model call is given up on: a server that
fails the same request the same way each time will not answer it on the 10th try."""
_MEMO_LIMIT = 1000


async def _with_heartbeat(work: Awaitable[T]) -> T:
    """Heartbeat while `work` runs so a dead worker is noticed within the heartbeat
    timeout, not after the whole start-to-close timeout."""
    timeout = activity.info().heartbeat_timeout
    interval = max(0.2, (timeout.total_seconds() / 3) if timeout else 5.0)
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        # A cancelled activity (interrupt, deadline, worker shutdown) must not leave
        # the provider call running: `asyncio.wait` does not cancel what it waits on.
        task.cancel()


def _classify(exc: Exception) -> ApplicationError:
    if isinstance(exc, ModelRateLimited):
        delay = timedelta(seconds=exc.retry_after_s) if exc.retry_after_s else None
        return ApplicationError(str(exc), type=ERR_MODEL_RATE_LIMITED, next_retry_delay=delay)
    if isinstance(exc, ModelPermanentError):
        return ApplicationError(str(exc), type=ERR_MODEL_PERMANENT, non_retryable=True)
    if isinstance(exc, ModelTransientError | TimeoutError | ConnectionError):
        return ApplicationError(str(exc) or type(exc).__name__, type=ERR_MODEL_TRANSIENT)
    return ApplicationError(f"{type(exc).__name__}: {exc}", type=ERR_MODEL_TRANSIENT)


class RepeatedErrors:
    """The last failure of each model call (workflow id + activity id), in this worker
    process, so a retry can tell whether it failed exactly the same way again."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[str, int]] = {}

    def record(self, key: tuple[str, str], exc: Exception) -> int:
        """How often in a row `exc` (a 500) has now failed this call; 0 for others."""
        if not (isinstance(exc, ModelTransientError) and exc.status == 500):
            self._last.pop(key, None)
            return 0
        message = str(exc)
        previous = self._last.get(key)
        count = previous[1] + 1 if previous is not None and previous[0] == message else 1
        self._last[key] = (message, count)
        while len(self._last) > _MEMO_LIMIT:
            del self._last[next(iter(self._last))]
        return count

    def forget(self, key: tuple[str, str]) -> None:
        self._last.pop(key, None)


def _policy(max_attempts: int) -> RetryPolicy:
    # Not every server hands the policy to the activity; the workflow builds it the
    # same way from the attempts the request carries.
    return activity.info().retry_policy or model_retry_policy(max_attempts)


def _next_delay(error: ApplicationError, max_attempts: int) -> timedelta | None:
    """When the next attempt of this activity runs, or None when none is left."""
    info = activity.info()
    policy = _policy(max_attempts)
    if error.non_retryable:
        return None
    if policy.maximum_attempts and info.attempt >= policy.maximum_attempts:
        return None
    if error.next_retry_delay is not None:
        return error.next_retry_delay
    interval = policy.initial_interval.total_seconds() * policy.backoff_coefficient ** (
        info.attempt - 1
    )
    if policy.maximum_interval is not None:
        interval = min(interval, policy.maximum_interval.total_seconds())
    return timedelta(seconds=interval)


def _of_attempts(attempt: int, max_attempts: int) -> str:
    total = _policy(max_attempts).maximum_attempts
    return f"attempt {attempt} of {total}" if total else f"attempt {attempt}"


def _count_model_call(model_name: str, usage: Usage) -> None:
    meter = activity.metric_meter().with_additional_attributes({"model": model_name})
    meter.create_counter(METRIC_MODEL_CALLS, "Model calls that returned").add(1)
    tokens = meter.create_counter(METRIC_TOKENS, "Tokens used", "tokens")
    tokens.add(usage.input_tokens, {"direction": "input"})
    tokens.add(usage.output_tokens, {"direction": "output"})
    if usage.cost_usd:
        cost = meter.create_counter(METRIC_COST, "Model cost in millionths of a USD")
        cost.add(round(usage.cost_usd * 1_000_000))


async def _publish_status(
    deltas: DeltaRelay, detail: str, *, attempt: int, retry_in_s: float | None = None
) -> None:
    stream = await deltas.open()
    stream.topic(TOPIC_EVENTS, type=EVENT_TOPIC_TYPE).publish(
        StatusChanged(
            status="retrying_model", detail=detail, attempt=attempt, retry_in_s=retry_in_s
        )
    )


class LlmActivities:
    """Holds the model (built from settings in the worker, never from workflow input)."""

    def __init__(
        self,
        model: Model,
        store: TranscriptStore,
        *,
        settings: Settings | None = None,
    ) -> None:
        """`settings` lets a conversation name its own model (`ConversationOptions.
        model`), built here with the worker's keys; without them only `model` serves."""
        self.model = model
        self.store = store
        self._settings = settings
        self._models: dict[str, Model] = {}
        self._repeats = RepeatedErrors()

    def model_for(self, model_id: str | None) -> Model:
        """The worker's model, or the one a conversation asked for (built once)."""
        if model_id is None or model_id == self.model.name:
            return self.model
        if model_id not in self._models:
            if self._settings is None:
                raise ModelPermanentError(
                    f"this worker serves only `{self.model.name}`, not `{model_id}`"
                )
            from onward.models.factory import build_model  # only when a conversation asks

            chosen = self._settings.model_copy(update={"model": model_id})
            self._models[model_id] = build_model(chosen)
        return self._models[model_id]

    @activity.defn(name=ACTIVITY_DECIDE)
    async def decide(self, wire: DecideRequest) -> DecideResult:
        # Written before the model is called, so nothing said is lost if it fails.
        try:
            request, transcript = await resolve_request(self.store, wire)
        except (UserError, TranscriptMissing) as exc:
            raise ApplicationError(str(exc), type=ERR_TRANSCRIPT, non_retryable=True) from exc
        try:
            model = self.model_for(wire.model)
        except (UserError, ModelPermanentError) as exc:
            raise ApplicationError(str(exc), type=ERR_MODEL_PERMANENT, non_retryable=True) from exc
        result = await self._decide_resolved(request, model)
        return result.model_copy(update={"transcript": transcript})

    async def _decide_resolved(self, request: ModelRequest, model: Model) -> DecideResult:
        # Token deltas go to the conversation's stream in small batches: live text for
        # clients, a bounded number of history events per call.
        async with DeltaRelay(DELTA_BATCH_INTERVAL) as deltas:
            attempt = activity.info().attempt
            if attempt > 1:
                # The workflow only sees the final outcome; tell watchers a retry is on.
                await _publish_status(
                    deltas,
                    f"Trying the model again ({_of_attempts(attempt, request.max_attempts)}).",
                    attempt=attempt,
                )
            return await self._decide(request, deltas, model)

    async def _decide(
        self, request: ModelRequest, deltas: DeltaRelay, model: Model
    ) -> DecideResult:
        info = activity.info()

        async def on_delta(text: str) -> None:
            activity.heartbeat()
            deltas.publish(TokenDelta(call=info.activity_id, attempt=info.attempt, text=text))

        try:
            response = await _with_heartbeat(model.decide(request, on_delta))
        except MalformedModelOutput as exc:
            usage = getattr(exc, "usage", None)
            return DecideResult(
                malformed=str(exc),
                usage=usage if isinstance(usage, Usage) else Usage(requests=1),
                model_name=model.name,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = self._classify_repeat(exc)
            activity.metric_meter().create_counter(METRIC_MODEL_ERRORS, "Failed model calls").add(
                1, {"type": error.type or "unknown"}
            )
            delay = _next_delay(error, request.max_attempts)
            if delay is not None:
                # Said at once, so a provider outage is visible while it lasts.
                await _publish_status(
                    deltas,
                    f"The model call failed ({error.message}); retrying in "
                    f"{delay.total_seconds():.0f} s "
                    f"({_of_attempts(info.attempt + 1, request.max_attempts)}).",
                    attempt=info.attempt + 1,
                    retry_in_s=delay.total_seconds(),
                )
            raise error from exc
        self._repeats.forget((info.workflow_id or "", info.activity_id))
        _count_model_call(response.model_name, response.usage)
        return DecideResult(
            decision=response.decision, usage=response.usage, model_name=response.model_name
        )

    def _classify_repeat(self, exc: Exception) -> ApplicationError:
        info = activity.info()
        key = (info.workflow_id or "", info.activity_id)
        repeats = self._repeats.record(key, exc)
        if repeats >= SAME_ERROR_LIMIT:
            self._repeats.forget(key)
            return ApplicationError(
                f"the model server failed this request the same way {repeats} times in a "
                f"row ({exc}); giving up instead of retrying",
                type=ERR_MODEL_PERMANENT,
                non_retryable=True,
            )
        return _classify(exc)

    @activity.defn(name=ACTIVITY_GUARDRAIL)
    async def guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        try:
            return await _with_heartbeat(self.model.check_guardrail(request))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _classify(exc) from exc

    def all(self) -> list[Callable[..., Any]]:
        return [self.decide, self.guardrail]
