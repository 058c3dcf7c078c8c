"""Tracing and metrics for workers.

- Traces: Temporal's OpenTelemetry interceptor creates spans for workflows and
  activities; workflow spans are emitted once, not again on replay. An OTLP exporter
  is used when `ONWARD_OTLP_ENDPOINT` is set.
- Metrics: Temporal's runtime serves a Prometheus endpoint (`ONWARD_METRICS_BIND`) with
  the SDK's worker metrics; onward's own counters go through Temporal's metric meters
  (`activity.metric_meter()`, `workflow.metric_meter()`), which are replay-safe, so
  both land on the same endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from onward.config import Settings
from onward.exceptions import UserError

if TYPE_CHECKING:
    # Imported only when tracing is on: it costs ~0.5 s at every worker start.
    from temporalio.contrib.opentelemetry import TracingInterceptor

METRIC_MODEL_CALLS = "onward_model_calls"
METRIC_MODEL_ERRORS = "onward_model_errors"
METRIC_TOKENS = "onward_tokens"
METRIC_COST = "onward_cost_microusd"
METRIC_TOOL_CALLS = "onward_tool_calls"
METRIC_APPROVALS_REQUESTED = "onward_approvals_requested"
METRIC_APPROVALS_DECIDED = "onward_approvals_decided"
METRIC_BUDGET_STOPS = "onward_budget_stops"


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving Prometheus metrics, or None when not configured."""
    if not settings.metrics_bind:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.metrics_bind, counters_total_suffix=True)
        )
    )


def tracing_interceptor(settings: Settings) -> TracingInterceptor | None:
    """The tracing interceptor, exporting over OTLP when an endpoint is configured."""
    if not settings.otlp_endpoint:
        return None
    from temporalio.contrib.opentelemetry import TracingInterceptor

    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise UserError(
            "ONWARD_OTLP_ENDPOINT is set but the exporter is missing: install `onward[otel]`"
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": "onward-worker"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))
    )
    trace.set_tracer_provider(provider)
    return TracingInterceptor(provider.get_tracer("onward"), always_create_workflow_spans=True)
