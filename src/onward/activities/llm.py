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
from temporalio.exceptions import ApplicationError

from onward.activities.deltas import DeltaRelay
from onward.agent.activity_contracts import ACTIVITY_DECIDE, ACTIVITY_GUARDRAIL, DecideResult
from onward.agent.events import TOPIC_EVENTS, ConversationEvent, TokenDelta
from onward.agent.messages import Usage
from onward.exceptions import (
    ERR_MODEL_PERMANENT,
    ERR_MODEL_RATE_LIMITED,
    ERR_MODEL_TRANSIENT,
    MalformedModelOutput,
    ModelPermanentError,
    ModelRateLimited,
    ModelTransientError,
)
from onward.models.base import GuardrailRequest, GuardrailResponse, Model, ModelRequest
from onward.observability import (
    METRIC_COST,
    METRIC_MODEL_CALLS,
    METRIC_MODEL_ERRORS,
    METRIC_TOKENS,
)

T = TypeVar("T")
DELTA_BATCH_INTERVAL = timedelta(milliseconds=150)
DeltaSink = Callable[[str, str], Awaitable[None]]
"""Receives (conversation_id, text delta) for live streaming to clients."""


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


def _count_model_call(model_name: str, usage: Usage) -> None:
    meter = activity.metric_meter().with_additional_attributes({"model": model_name})
    meter.create_counter(METRIC_MODEL_CALLS, "Model calls that returned").add(1)
    tokens = meter.create_counter(METRIC_TOKENS, "Tokens used", "tokens")
    tokens.add(usage.input_tokens, {"direction": "input"})
    tokens.add(usage.output_tokens, {"direction": "output"})
    if usage.cost_usd:
        cost = meter.create_counter(METRIC_COST, "Model cost in millionths of a USD")
        cost.add(round(usage.cost_usd * 1_000_000))


class LlmActivities:
    """Holds the model (built from settings in the worker, never from workflow input)."""

    def __init__(self, model: Model, delta_sink: DeltaSink | None = None) -> None:
        self.model = model
        self.delta_sink = delta_sink

    @activity.defn(name=ACTIVITY_DECIDE)
    async def decide(self, request: ModelRequest) -> DecideResult:
        # Token deltas go to the conversation's stream in small batches: live text for
        # clients, a bounded number of history events per call.
        async with DeltaRelay(DELTA_BATCH_INTERVAL) as deltas:
            attempt = activity.info().attempt
            if attempt > 1:
                # The workflow only sees the final outcome; tell watchers a retry is on.
                stream = await deltas.open()
                stream.topic(TOPIC_EVENTS, type=ConversationEvent).publish(
                    ConversationEvent(
                        type="status", status="retrying_model", detail=f"attempt {attempt}"
                    )
                )
            return await self._decide(request, deltas)

    async def _decide(self, request: ModelRequest, deltas: DeltaRelay) -> DecideResult:
        sink = self.delta_sink
        info = activity.info()

        async def on_delta(text: str) -> None:
            activity.heartbeat()
            deltas.publish(TokenDelta(call=info.activity_id, attempt=info.attempt, text=text))
            if sink is not None:
                await sink(request.conversation_id, text)

        try:
            response = await _with_heartbeat(self.model.decide(request, on_delta))
        except MalformedModelOutput as exc:
            usage = getattr(exc, "usage", None)
            return DecideResult(
                malformed=str(exc),
                usage=usage if isinstance(usage, Usage) else Usage(requests=1),
                model_name=self.model.name,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = _classify(exc)
            activity.metric_meter().create_counter(METRIC_MODEL_ERRORS, "Failed model calls").add(
                1, {"type": error.type or "unknown"}
            )
            raise error from exc
        _count_model_call(response.model_name, response.usage)
        return DecideResult(
            decision=response.decision, usage=response.usage, model_name=response.model_name
        )

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
