"""`build_model` and `describe_model`: the configured model, or an actionable error."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from onward.config import Settings
from onward.exceptions import UserError
from onward.models.factory import build_model, describe_model
from onward.models.offline import OfflineModel
from onward.models.providers import ProviderModel


def settings_with(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # pyright: ignore[reportCallIssue]


def test_default_is_the_offline_model() -> None:
    settings = settings_with()
    assert isinstance(build_model(settings), OfflineModel)
    assert describe_model(settings) == "offline (built-in offline model, no API key configured)"


def test_offline_with_a_key_configured_says_so() -> None:
    description = describe_model(settings_with(groq_api_key="gsk-secret"))
    assert description.startswith("offline (built-in offline model")
    assert "a provider key is configured" in description
    assert "gsk-secret" not in description


@pytest.mark.parametrize(
    ("model", "env"),
    [
        ("openai:gpt-4o-mini", "ONWARD_OPENAI_API_KEY"),
        ("anthropic:claude-haiku-4-5", "ONWARD_ANTHROPIC_API_KEY"),
        ("google-gla:gemini-2.0-flash", "ONWARD_GOOGLE_API_KEY"),
        ("groq:llama-3.3-70b-versatile", "ONWARD_GROQ_API_KEY"),
    ],
)
def test_provider_without_key_names_the_variable(model: str, env: str) -> None:
    settings = settings_with(model=model)
    with pytest.raises(UserError, match=env) as caught:
        build_model(settings)
    assert "ONWARD_MODEL=offline" in str(caught.value)
    assert env in describe_model(settings)
    assert "not usable" in describe_model(settings)


def test_openai_error_mentions_compatible_servers() -> None:
    with pytest.raises(UserError, match="ONWARD_OPENAI_BASE_URL"):
        build_model(settings_with(model="openai:gpt-4o-mini"))


@pytest.mark.parametrize(
    ("model", "values", "described"),
    [
        ("openai:gpt-4o-mini", {"openai_api_key": "sk-1"}, "(OpenAI API)"),
        ("anthropic:claude-haiku-4-5", {"anthropic_api_key": "sk-2"}, "(Anthropic API)"),
        ("google-gla:gemini-2.0-flash", {"google_api_key": "g-3"}, "(Google Gemini API)"),
        ("groq:llama-3.3-70b-versatile", {"groq_api_key": "gsk-4"}, "(Groq API)"),
        (
            "openai:llama3.2",
            {"openai_base_url": "http://localhost:11434/v1"},
            "OpenAI-compatible server at http://localhost:11434/v1",
        ),
    ],
)
def test_configured_provider_is_built(model: str, values: dict[str, Any], described: str) -> None:
    settings = settings_with(model=model, **values)
    built = build_model(settings)
    assert isinstance(built, ProviderModel)
    assert built.name == model and built.offline is False
    description = describe_model(settings)
    assert description.startswith(model) and described in description
    for secret in values.values():
        if not str(secret).startswith("http"):
            assert str(secret) not in description


def test_compatible_base_url_is_where_requests_go() -> None:
    settings = settings_with(model="openai:llama3.2", openai_base_url="http://127.0.0.1:9/v1")
    built = build_model(settings)
    assert isinstance(built, ProviderModel)
    assert built.base_url is not None and built.base_url.startswith("http://127.0.0.1:9/v1")


@pytest.mark.parametrize("model", ["gpt-4o", "mistral:large", "openai:", "openai:  "])
def test_unknown_model_ids_are_refused(model: str) -> None:
    settings = settings_with(model=model, openai_api_key="sk-1")
    with pytest.raises(UserError, match="not a model onward knows"):
        build_model(settings)
    assert "not usable" in describe_model(settings)


def test_gguf_without_llama_cpp_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "llama_cpp" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    settings = settings_with(model="gguf:/models/gemma.gguf")
    with pytest.raises(UserError, match=r"onward\[local\]"):
        build_model(settings)
    assert describe_model(settings).startswith("gguf:/models/gemma.gguf (local GGUF model")


def test_gguf_needs_a_path() -> None:
    with pytest.raises(UserError, match="needs a file path"):
        build_model(settings_with(model="gguf:"))
