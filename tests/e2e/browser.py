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

from onward.api.auth import read_local_token
from onward.api.settings import ApiSettings
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.models.base import Model
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
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# Every visible element inside the viewport's width, except inside boxes that scroll
# sideways on purpose (wide tables); and the document itself no wider than the window.
OVERFLOW_PROBE = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (n) => ["auto", "scroll"].includes(getComputedStyle(n).overflowX);
  const wide = [];
  for (const node of document.querySelectorAll("body *")) {
    const style = getComputedStyle(node);
    if (style.visibility === "hidden" || style.display === "none") continue;
    let p = node.parentElement;
    while (p && p !== document.body && !scrolls(p)) p = p.parentElement;
    if (p && p !== document.body) continue;
    const r = node.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const where = `${node.tagName}.${node.className} ${r.left}..${r.right}`;
    if (r.left < -1 || r.right > width + 1) wide.push(where);
  }
  return { scrollWidth: document.documentElement.scrollWidth, width, wide };
}"""


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


async def sign_in(page: Page, port: int, token_file: Path) -> str:
    """Open the printed sign-in link; returns the token it carried."""
    token = read_local_token(token_file)
    assert token is not None
    await page.goto(f"http://127.0.0.1:{port}/?token={token}")
    await expect(page.locator("#user-name")).to_have_text("local")
    return token


async def assert_fits(page: Page) -> None:
    """Nothing on the page is wider than the viewport."""
    found = await page.evaluate(OVERFLOW_PROBE)
    assert found["scrollWidth"] <= found["width"], found
    assert found["wide"] == [], found


async def serious_axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    found = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter((v) => ['serious', 'critical'].includes(v.impact))"
        ".map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)"
    )
    return list(found)


# The chat scrolls inside its message list; for a picture of the whole conversation
# the page flows instead, for the moment of the screenshot (CSSOM, which the page's
# style policy allows, unlike an injected stylesheet).
UNROLL = """(on) => {
  const set = (sel, prop, value) => document.querySelectorAll(sel).forEach((n) => {
    n.style.setProperty(prop, on ? value : "");
  });
  set("body", "height", "auto");
  set(".layout, .chat, #conversation", "min-height", "auto");
  set(".layout, #conversation", "flex", "none");
  set(".messages", "overflow", "visible");
  set(".messages", "flex", "none");
}"""


async def screenshot_whole(page: Page, path: Path) -> None:
    """A full-page screenshot of the whole conversation, not just what is scrolled in."""
    await page.evaluate(UNROLL, True)
    try:
        await page.screenshot(path=path, full_page=True)
    finally:
        await page.evaluate(UNROLL, False)


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
    env: WorkflowEnvironment,
    settings: Settings,
    *,
    height: int,
    width: int = 1280,
    bypass_csp: bool = False,
    model: Model | None = None,
    workers: bool = True,
) -> AsyncGenerator[Session]:
    """Chromium with one page, and workers with the offline model (or `model`); the
    page must raise no JavaScript error. `bypass_csp` lets a test inject a checker
    (axe-core) into the page, which the page's own policy forbids. With `workers`
    False the test runs (and stops) its own."""
    executable = chromium()
    running = build_workers(env.client, settings, model or OfflineModel()) if workers else []
    errors: list[str] = []
    async with running_workers(running), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": width, "height": height}, bypass_csp=bypass_csp
            )
            page = await context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            api = ApiSettings(_env_file=None)  # type: ignore[call-arg]
            yield Session(page, Conversations(env.client, settings), api, free_port())
        finally:
            await browser.close()
    assert errors == []
