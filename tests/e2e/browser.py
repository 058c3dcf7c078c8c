"""Shared pieces of the browser tests: Debian's chromium, its flags, page helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ASSISTANT = ".message.assistant:not(.streaming)"


def chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        reason = "Debian's `chromium` is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the browser tests")
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    return found


async def send(page: Page, text: str) -> None:
    await page.fill("#message-input", text)
    await page.press("#message-input", "Enter")
    await expect(page.locator("#message-input")).to_have_value("")
