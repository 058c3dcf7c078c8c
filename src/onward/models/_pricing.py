"""What one provider response cost: its token usage as onward's `Usage`, priced with
`genai-prices` (None, never 0, when the model is unknown)."""

from __future__ import annotations

from genai_prices import calc_price
from pydantic_ai.messages import ModelResponse as PaiResponse

from onward.agent.messages import Usage

# genai-prices' provider ids; an OpenAI-compatible server is priced as OpenAI, so a
# local model name it does not know stays unpriced (None), never free.
_PRICE_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "google-gla": "google"}


def response_usage(response: PaiResponse, provider: str, model_name: str) -> Usage:
    """The usage of `response`, from `provider:model_name`, with its price."""
    u = response.usage
    cost = _price(response, provider, model_name)
    return Usage(
        requests=1,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cached_tokens=u.cache_read_tokens,
        cost_usd=cost,
        cost_unknown_requests=0 if cost is not None else 1,
    )


def _price(response: PaiResponse, provider: str, model_name: str) -> float | None:
    """Price from genai-prices, or None (never 0) when the model is unknown."""
    if response.usage.unmeasured_requests:
        return None
    names = dict.fromkeys(n for n in (response.model_name, model_name) if n)
    for model_ref in names:
        try:
            total = calc_price(
                response.usage,
                model_ref,
                provider_id=_PRICE_PROVIDER.get(provider, provider),
                genai_request_timestamp=response.timestamp,
            )
        except LookupError:
            continue
        return round(float(total.total_price), 8)
    return None
