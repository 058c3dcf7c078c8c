"""Choose the model a worker uses from `Settings.model`.

`offline` (the default) is the built-in offline model; `openai:<name>`,
`anthropic:<name>`, `google-gla:<name>` and `groq:<name>` are real providers (an
`openai:` model with `ONWARD_OPENAI_BASE_URL` reaches any OpenAI-compatible server);
`gguf:/path/to/model.gguf` runs a local GGUF file with llama-cpp-python.
"""

from __future__ import annotations

from pydantic import SecretStr

from onward.config import OFFLINE_MODEL, Settings
from onward.exceptions import UserError
from onward.models.base import Model
from onward.models.offline import OfflineModel

_PROVIDERS: dict[str, tuple[str, str]] = {
    # prefix: (settings field holding its key, human name)
    "openai": ("openai_api_key", "OpenAI"),
    "anthropic": ("anthropic_api_key", "Anthropic"),
    "google-gla": ("google_api_key", "Google Gemini"),
    "groq": ("groq_api_key", "Groq"),
}
_GGUF = "gguf:"


def _env_name(field: str) -> str:
    return f"ONWARD_{field.upper()}"


def _has_key(settings: Settings, field: str) -> bool:
    value = getattr(settings, field)
    return isinstance(value, SecretStr) and bool(value.get_secret_value())


def _parse(model: str) -> tuple[str, str]:
    prefix, sep, name = model.partition(":")
    if not sep or prefix not in _PROVIDERS or not name.strip():
        choices = ", ".join(f"`{p}:<model>`" for p in _PROVIDERS)
        raise UserError(
            f"ONWARD_MODEL={model!r} is not a model onward knows: use `{OFFLINE_MODEL}`, "
            f"{choices} or `gguf:/path/to/model.gguf`"
        )
    return prefix, name.strip()


def _missing_credentials(prefix: str, name: str, settings: Settings) -> str | None:
    field, human = _PROVIDERS[prefix]
    if _has_key(settings, field) or (prefix == "openai" and settings.openai_base_url):
        return None
    message = f"ONWARD_MODEL=`{prefix}:{name}` needs a {human} API key: set `{_env_name(field)}`"
    if prefix == "openai":
        message += (
            " (or `ONWARD_OPENAI_BASE_URL` for an OpenAI-compatible server such as Ollama, "
            "vLLM, llama.cpp or LM Studio)"
        )
    return message + f", or use ONWARD_MODEL={OFFLINE_MODEL} for the built-in offline model."


def build_model(settings: Settings) -> Model:
    """The model configured by `settings.model`.

    Raises:
        UserError: An unknown model id, or a provider without its key (the message
            names the environment variable to set).
    """
    model = settings.model.strip()
    if model == OFFLINE_MODEL:
        return OfflineModel()
    if model.startswith(_GGUF):
        path = model.removeprefix(_GGUF).strip()
        if not path:
            raise UserError("ONWARD_MODEL=`gguf:` needs a file path, e.g. `gguf:/models/x.gguf`")
        from onward.models.gguf import GgufModel  # optional extra: import only when used

        return GgufModel(
            path,
            n_ctx=settings.gguf_context,
            n_threads=settings.gguf_threads,
            crash_dir=settings.data_dir / "gguf-attempts",
        )
    prefix, name = _parse(model)
    if problem := _missing_credentials(prefix, name, settings):
        raise UserError(problem)
    # Imported here: pydantic-ai and the provider SDKs are slow to import, and an
    # offline worker never needs them.
    from onward.models.providers import ProviderModel

    return ProviderModel(f"{prefix}:{name}", settings)


def describe_model(settings: Settings) -> str:
    """One line for `onward doctor` and the UI; never raises, never shows a secret."""
    model = settings.model.strip()
    if model == OFFLINE_MODEL:
        if any(_has_key(settings, field) for field, _ in _PROVIDERS.values()):
            return f"{OFFLINE_MODEL} (built-in offline model; a provider key is configured)"
        return f"{OFFLINE_MODEL} (built-in offline model, no API key configured)"
    if model.startswith(_GGUF):
        return f"{model} (local GGUF model via llama-cpp-python)"
    try:
        prefix, name = _parse(model)
    except UserError as exc:
        return f"{model} (not usable: {exc})"
    if problem := _missing_credentials(prefix, name, settings):
        return f"{prefix}:{name} (not usable: {problem})"
    if prefix == "openai" and settings.openai_base_url:
        return f"{prefix}:{name} (OpenAI-compatible server at {settings.openai_base_url})"
    return f"{prefix}:{name} ({_PROVIDERS[prefix][1]} API)"
