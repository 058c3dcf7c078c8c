"""The bundled examples' own settings: their real integrations, used only when set.

They are read the way `onward.config.Settings` is (`ONWARD_*` variables and `.env` in
the working directory), but only here: the core knows nothing about Stripe, SMTP or
the purchase saga. Tools read them when they run, inside the activity, so the secrets
never enter a workflow's input or history.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings

from onward.config import ONWARD_ENV


class ExampleSettings(BaseSettings):
    """What the bundled goals' tools read at run time. Documented in the README table."""

    model_config = ONWARD_ENV

    stripe_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ONWARD_STRIPE_API_KEY", "STRIPE_API_KEY", "stripe_api_key"),
        description="Stripe key for travel invoices (`STRIPE_API_KEY` works too).",
    )
    smtp_url: SecretStr | None = Field(
        default=None, description="smtp://user:pass@host:port for support emails; unset = outbox."
    )
    purchase_fail_sku: str | None = Field(
        default=None, description="Shipping fails for this SKU (saga demonstration)."
    )


def example_settings() -> ExampleSettings:
    """The examples' settings as the environment says now.

    Read on every call rather than cached: it is cheap next to the side effect a tool
    is about to make, and a changed environment (a test's, an operator's) applies at
    once, without a cache to clear.
    """
    return ExampleSettings()
