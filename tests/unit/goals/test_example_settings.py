"""The examples' settings: every environment variable name they had in the core works."""

from __future__ import annotations

import pytest

from onward.config import Settings
from onward.examples.settings import example_settings

NAMES = ("ONWARD_STRIPE_API_KEY", "STRIPE_API_KEY", "ONWARD_SMTP_URL", "ONWARD_PURCHASE_FAIL_SKU")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no `.env` of the checkout


@pytest.mark.parametrize("name", ["ONWARD_STRIPE_API_KEY", "STRIPE_API_KEY"])
def test_the_stripe_key_is_read_under_both_names(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert example_settings().stripe_api_key is None
    monkeypatch.setenv(name, "sk_test_9")
    key = example_settings().stripe_api_key
    assert key is not None and key.get_secret_value() == "sk_test_9"
    assert "sk_test_9" not in repr(example_settings())


def test_smtp_and_the_saga_sku_are_read_when_the_tool_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = example_settings()
    assert (before.smtp_url, before.purchase_fail_sku) == (None, None)
    monkeypatch.setenv("ONWARD_SMTP_URL", "smtp://u:PASS@mail.example:587")
    monkeypatch.setenv("ONWARD_PURCHASE_FAIL_SKU", "LAMP-2")
    after = example_settings()
    assert after.smtp_url is not None
    assert after.smtp_url.get_secret_value() == "smtp://u:PASS@mail.example:587"
    assert after.purchase_fail_sku == "LAMP-2"


def test_the_core_settings_know_nothing_of_the_examples() -> None:
    assert not {"stripe_api_key", "smtp_url", "purchase_fail_sku"} & set(Settings.model_fields)
