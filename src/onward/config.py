"""One settings class for every onward process (worker, API, CLI).

Values come from `ONWARD_*` environment variables and a `.env` file in the working
directory. Secrets are `SecretStr` so they never show up in logs, `onward doctor`
output or workflow history: activities read them here, at run time.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from onward.redaction import MASK, mask_url

OFFLINE_MODEL = "offline"
WorkflowSandbox = Literal["auto", "shared", "isolated", "off"]
ModelStream = Literal["auto", "on", "off"]


ONWARD_ENV = SettingsConfigDict(
    env_prefix="ONWARD_",
    env_file=".env",
    extra="ignore",
    validate_default=True,
    populate_by_name=True,
)
"""How onward's settings classes read the environment (`ONWARD_*` and a `.env` file);
goal modules with settings of their own use it too."""


class Settings(BaseSettings):
    """Effective configuration. Every field is documented in the README table."""

    model_config = ONWARD_ENV

    data_dir: Path = Field(
        default=Path(".onward"), description="Embedded server database, ledger, payloads."
    )

    # Temporal: an address switches from the embedded dev server to an external cluster.
    temporal_address: str | None = Field(
        default=None, description="host:port of an external Temporal; unset = embedded."
    )
    temporal_namespace: str = Field(default="default", description="Temporal namespace.")
    temporal_tls_cert: Path | None = Field(default=None, description="mTLS client cert.")
    temporal_tls_key: Path | None = Field(default=None, description="mTLS client key.")
    temporal_api_key: SecretStr | None = Field(default=None, description="Temporal Cloud key.")
    embedded_host: str = Field(default="127.0.0.1", description="Embedded server bind IP.")
    embedded_port: int = Field(default=7233, description="Embedded server gRPC port.")
    embedded_ui_port: int = Field(default=8233, description="Embedded server Web UI port.")
    temporal_ui_url: str | None = Field(
        default=None, description="Web UI base URL for links; default from the embedded one."
    )

    task_queue: str = Field(default="onward", description="Workflow and tool task queue.")
    llm_task_queue: str = Field(default="onward-llm", description="Model-call task queue.")
    llm_concurrency: int = Field(default=8, ge=1, description="Model calls at once per worker.")
    llm_requests_per_second: float | None = Field(
        default=None, gt=0, description="Optional rate cap on the llm task queue."
    )
    workflow_sandbox: WorkflowSandbox = Field(
        default="auto",
        description="`auto`: `shared` when a loaded goal runs graph code from outside "
        "onward in the workflow, else `off`; `shared`: sandboxed, modules loaded once per "
        "worker; `isolated`: workflow module reloaded per run; `off`: no sandbox.",
    )

    api_host: str = Field(default="127.0.0.1", description="API bind address.")
    api_port: int = Field(default=8000, description="API port.")

    model: str = Field(
        default=OFFLINE_MODEL,
        description="`offline`, `openai:gpt-4o-mini`, `anthropic:…`, `google-gla:…`, `groq:…`.",
    )
    openai_api_key: SecretStr | None = Field(default=None, description="OpenAI key.")
    openai_base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL (Ollama, vLLM, LM Studio…)."
    )
    anthropic_api_key: SecretStr | None = Field(default=None, description="Anthropic key.")
    google_api_key: SecretStr | None = Field(default=None, description="Google Gemini key.")
    groq_api_key: SecretStr | None = Field(default=None, description="Groq key.")
    model_timeout: timedelta = Field(
        default=timedelta(minutes=2), description="Start-to-close timeout of a model call."
    )
    model_stream: ModelStream = Field(
        default="auto",
        description="Stream decisions: `auto` (stream, and stop streaming for a server "
        "whose streamed tool calls come back broken), `on` or `off`.",
    )
    model_max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Longest output of one model call in tokens (unset: the provider's "
        "default; a local server's may be the whole context).",
    )
    gguf_threads: int | None = Field(
        default=None, ge=1, description="CPU threads of a `gguf:` model (default: all cores)."
    )
    gguf_context: int = Field(
        default=8192, ge=512, description="Context window of a `gguf:` model, in tokens."
    )
    model_heartbeat_timeout: timedelta = Field(
        default=timedelta(seconds=15), description="A silent model call is retried after this."
    )

    goal_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list[str], description="Extra modules that define goals (comma-separated)."
    )
    approval_timeout: timedelta = Field(
        default=timedelta(hours=24), description="An undecided approval counts as rejected."
    )
    idle_timeout: timedelta = Field(
        default=timedelta(days=7), description="A conversation with no input ends after this."
    )
    turns_before_continue_as_new: int = Field(
        default=50, ge=1, description="Continue-as-new after this many turns."
    )
    max_steps_per_turn: int = Field(
        default=12, ge=1, description="Model decisions allowed for one user message."
    )
    max_message_chars: int = Field(default=8000, ge=1, description="Longest accepted message.")
    guardrail: bool = Field(
        default=True,
        description="Let the model refuse messages outside a goal (judged within the decision).",
    )
    payload_s3_bucket: str | None = Field(
        default=None, description="Store large payloads in this S3 bucket (`onward[s3]`)."
    )
    payload_s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, …); unset = AWS."
    )
    payload_s3_region: str | None = Field(default=None, description="S3 region.")
    search_attributes: bool = Field(
        default=True, description="Index goal/owner/status/cost in Temporal visibility."
    )
    payload_threshold_bytes: int = Field(
        default=128 * 1024, description="Payloads larger than this go to external storage."
    )

    metrics_bind: str | None = Field(
        default=None, description="host:port for the worker's Prometheus `/metrics`."
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces."
    )

    mcp_secrets: dict[str, SecretStr] = Field(
        default_factory=dict[str, SecretStr],
        description="Secrets MCP servers refer to by name (JSON object): env values and "
        "headers such as Authorization, read by the worker's MCP activities.",
    )

    @field_validator(
        "model_timeout",
        "model_heartbeat_timeout",
        "approval_timeout",
        "idle_timeout",
        mode="before",
    )
    @classmethod
    def _seconds(cls, value: object) -> object:
        # Environment values arrive as strings; a bare number means seconds.
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator("goal_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

    def masked(self) -> dict[str, Any]:
        """Configuration as plain values for display: secrets replaced by `***`, and
        credentials in every URL-valued setting masked (`https://***@host/v1`)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = _masked_secret(value.get_secret_value())
            elif name == "mcp_secrets":
                out[name] = dict.fromkeys(self.mcp_secrets, MASK)
            elif isinstance(value, str):
                out[name] = mask_url(value)
            else:
                out[name] = str(value) if isinstance(value, Path | timedelta) else value
        return out

    @property
    def embedded(self) -> bool:
        return self.temporal_address is None

    @property
    def target_address(self) -> str:
        return self.temporal_address or f"{self.embedded_host}:{self.embedded_port}"

    @property
    def web_ui_url(self) -> str:
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        return f"http://{self.embedded_host}:{self.embedded_ui_port}"


def _masked_secret(secret: str) -> str:
    """A secret URL keeps its scheme and host (where it points is not the secret);
    anything else is `***`."""
    if not secret:
        return ""
    if mask_url(secret) != secret and "://" in secret:
        return mask_url(secret)
    return MASK


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
