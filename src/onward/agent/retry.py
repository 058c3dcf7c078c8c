"""Retry policies for activities, built from recorded options (deterministic)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from onward.agent.specs import RetrySpec
from onward.exceptions import NON_RETRYABLE_TYPES


def model_retry_policy(max_attempts: int) -> RetryPolicy:
    # Rate limits override the interval with the provider's Retry-After
    # (`next_retry_delay`); everything else backs off up to a minute.
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=max_attempts,
        non_retryable_error_types=NON_RETRYABLE_TYPES,
    )


def tool_retry_policy(spec: RetrySpec) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=spec.initial_interval_s),
        backoff_coefficient=spec.backoff,
        maximum_interval=timedelta(seconds=spec.max_interval_s),
        maximum_attempts=spec.max_attempts,
        non_retryable_error_types=NON_RETRYABLE_TYPES,
    )
