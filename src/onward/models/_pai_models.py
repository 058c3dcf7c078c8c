"""The pydantic-ai model behind a `ProviderModel`: built for `provider:name` with the
credentials and base URL from the settings, read in the worker (never from workflow
inputs)."""

from __future__ import annotations

from typing import Any

from pydantic_ai.exceptions import UserError as PaiUserError
from pydantic_ai.models import Model as PaiModel

from onward.config import Settings
from onward.exceptions import UserError


def build_pai_model(prefix: str, name: str, settings: Settings) -> PaiModel:
    """The pydantic-ai model for `prefix:name`, with credentials from `settings`."""
    try:
        if prefix == "openai":
            return _openai_model(name, settings)
        if prefix == "anthropic":
            from pydantic_ai.models.anthropic import AnthropicModel
            from pydantic_ai.providers.anthropic import AnthropicProvider

            key = _secret(settings.anthropic_api_key)
            return AnthropicModel(name, provider=AnthropicProvider(api_key=key))
        if prefix == "google-gla":
            from pydantic_ai.models.google import GoogleModel
            from pydantic_ai.providers.google import GoogleProvider

            return GoogleModel(
                name, provider=GoogleProvider(api_key=_secret(settings.google_api_key))
            )
        from pydantic_ai.models.groq import GroqModel
        from pydantic_ai.providers.groq import GroqProvider

        return GroqModel(name, provider=GroqProvider(api_key=_secret(settings.groq_api_key)))
    except PaiUserError as exc:
        raise UserError(f"cannot set up model `{prefix}:{name}`: {exc}") from exc


def _openai_model(name: str, settings: Settings) -> PaiModel:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.providers.openai_compatible import OpenAICompatibleProvider

    key = _secret(settings.openai_api_key)
    if settings.openai_base_url:
        # Chat Completions is what Ollama, vLLM, llama.cpp and LM Studio implement; the
        # compatible provider also keeps OpenAI-only request features away from them.
        provider = OpenAICompatibleProvider(
            "openai-compatible", base_url=settings.openai_base_url, api_key=key
        )
        return OpenAIChatModel(name, provider=provider)
    return OpenAIChatModel(name, provider=OpenAIProvider(api_key=key))


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    secret = str(value.get_secret_value())
    return secret or None
