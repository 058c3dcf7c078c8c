"""Shared pieces of the browser tests: Debian's chromium, its flags, page helpers."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from onward.api.settings import ApiSettings
from onward.config import Settings
from onward.conversations import Conversations
from onward.models.offline import OfflineModel
from onward.processes import free_port
from onward.worker import build_workers, running_workers

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


@dataclass
class Session:
    """A browser page next to a worker running the offline model (the API is served
    by the test, so it can stop and restart it)."""

    page: Page
    convs: Conversations
    api: ApiSettings
    port: int


@asynccontextmanager
async def browser_session(
    env: WorkflowEnvironment, settings: Settings, *, height: int
) -> AsyncGenerator[Session]:
    """Chromium with one page, and workers with the offline model; the page must raise
    no JavaScript error."""
    executable = chromium()
    workers = build_workers(env.client, settings, OfflineModel())
    errors: list[str] = []
    async with running_workers(workers), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": height})
            page.on("pageerror", lambda error: errors.append(str(error)))
            api = ApiSettings(_env_file=None)  # type: ignore[call-arg]
            yield Session(page, Conversations(env.client, settings), api, free_port())
        finally:
            await browser.close()
    assert errors == []
