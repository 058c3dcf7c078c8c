"""Credentials in URL-valued settings never show: in `masked()`, `onward doctor` and logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onward.api.app import uvicorn_log_config
from onward.cli.main import app
from onward.config import Settings, get_settings
from onward.redaction import (
    RedactingFilter,
    mask_url,
    mask_urls,
    public_url,
    redact_logs,
)

SECRETS = ("S3CRET", "OTLPPASS", "S3PASS", "SMTPPASS", "UIPASS")
URL_SETTINGS = {
    "ONWARD_OPENAI_BASE_URL": "https://ann:S3CRET@llm.example/v1",
    "ONWARD_OTLP_ENDPOINT": "https://k:OTLPPASS@otel.example/v1/traces?api_key=OTLPPASS",
    "ONWARD_PAYLOAD_S3_ENDPOINT_URL": "http://minio:S3PASS@s3.example:9000",
    "ONWARD_SMTP_URL": "smtp://mail:SMTPPASS@smtp.example:587",
    "ONWARD_TEMPORAL_UI_URL": "https://ops:UIPASS@temporal.example:8233",
}


def test_mask_url_hides_userinfo_and_secret_query_values() -> None:
    assert mask_url("https://u:PASS@host:8443/v1") == "https://***@host:8443/v1"
    assert mask_url("https://TOKEN@host/v1") == "https://***@host/v1"
    assert mask_url("http://h/x?api_key=abc&page=2") == "http://h/x?api_key=***&page=2"
    assert mask_url("http://127.0.0.1:4318/v1/traces") == "http://127.0.0.1:4318/v1/traces"
    assert mask_url("not a url") == "not a url"
    assert public_url("https://u:p@ui:8233/x?token=t&a=1") == "https://ui:8233/x?a=1"
    text = "POST https://u:PASS@llm.example/v1/chat failed; see http://ok.example/"
    assert mask_urls(text) == "POST https://***@llm.example/v1/chat failed; see http://ok.example/"


def test_masked_settings_hide_every_url_credential() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_base_url=URL_SETTINGS["ONWARD_OPENAI_BASE_URL"],
        otlp_endpoint=URL_SETTINGS["ONWARD_OTLP_ENDPOINT"],
        payload_s3_endpoint_url=URL_SETTINGS["ONWARD_PAYLOAD_S3_ENDPOINT_URL"],
        temporal_ui_url=URL_SETTINGS["ONWARD_TEMPORAL_UI_URL"],
        openai_api_key="sk-KEY",  # type: ignore[arg-type]
    )
    shown = settings.masked()
    assert shown["openai_base_url"] == "https://***@llm.example/v1"
    assert shown["otlp_endpoint"] == "https://***@otel.example/v1/traces?api_key=***"
    assert shown["payload_s3_endpoint_url"] == "http://***@s3.example:9000"
    assert shown["temporal_ui_url"] == "https://***@temporal.example:8233"
    assert shown["openai_api_key"] == "***"
    assert not any(s in repr(shown) for s in (*SECRETS, "sk-KEY"))


@pytest.fixture
def url_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ONWARD_DATA_DIR", str(tmp_path))
    # Nothing listens there: doctor reports Temporal unreachable, quickly.
    monkeypatch.setenv("ONWARD_TEMPORAL_ADDRESS", "127.0.0.1:9")
    monkeypatch.setenv("ONWARD_MODEL", "openai:gpt-4o-mini")
    for name, value in URL_SETTINGS.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("url_env")
def test_doctor_prints_urls_without_credentials() -> None:
    result = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "llm.example" in result.output and "otel.example" in result.output
    assert "***@llm.example" in result.output
    for secret in SECRETS:
        assert secret not in result.output, secret


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("onward.test.redaction")
    redact_logs()  # what `onward api` and `onward worker` do first: every root handler
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("model call to %s failed", "https://ann:S3CRET@llm.example/v1/chat")
    assert "S3CRET" not in caplog.text
    assert "https://***@llm.example/v1/chat" in caplog.text
    # uvicorn's own handlers (access and error logs) get the filter too.
    config = uvicorn_log_config()
    assert all(h["filters"] == ["redact"] for h in config["handlers"].values())
    assert config["filters"]["redact"]["()"] is RedactingFilter
