"""Settings that only the HTTP API reads (tokens, CORS, request limits).

They live apart from `onward.config.Settings` because no other process needs them;
they read the same `ONWARD_*` environment variables and `.env` file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_USER = "local"
"""The one user of an embedded install that configures no tokens."""


class ApiSettings(BaseSettings):
    """API-only configuration (`ONWARD_API_TOKENS`, `ONWARD_CORS_ORIGINS`, …)."""

    model_config = SettingsConfigDict(env_prefix="ONWARD_", env_file=".env", extra="ignore")

    api_tokens: dict[str, str] = Field(
        default_factory=dict[str, str],
        description='Bearer token -> user name, e.g. `{"tok1": "alice"}`. Empty = one '
        "local user whose token is generated into `api_token_file`.",
    )
    api_token_file: Path | None = Field(
        default=None,
        description="Where the local user's token is kept; default `<data_dir>/api-token`.",
    )
    cors_origins: list[str] = Field(
        default_factory=list[str],
        description="Origins allowed to call the API from a browser; empty = none (closed).",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1, description="Largest accepted request body (413 above)."
    )
    sse_keepalive_s: float = Field(
        default=15.0, gt=0, description="Seconds between keep-alive comments on idle streams."
    )
    user_writes_per_minute: int = Field(
        default=120,
        ge=0,
        description="POST requests (creates, messages, approvals, budget, end) one user may "
        "make per minute, in bursts of up to as many; 429 with Retry-After above. 0 = no limit.",
    )
    user_max_open_conversations: int = Field(
        default=100,
        ge=0,
        description="Conversations one user may have open (not ended, not deleted) at once; "
        "a create beyond it is 429. 0 = no limit.",
    )
    user_max_streams: int = Field(
        default=20,
        ge=0,
        description="Event streams one user may hold open on one API process; 429 above. "
        "0 = no limit.",
    )
    pending_create_grace_s: float = Field(
        default=60.0,
        ge=0,
        description="A create whose workflow start is unconfirmed for this long is settled "
        "by the reconciler (activated if its workflow exists, removed if not).",
    )

    def token_file(self, data_dir: Path) -> Path:
        """The local token's path: `api_token_file` or `<data_dir>/api-token`."""
        return self.api_token_file or data_dir / "api-token"
