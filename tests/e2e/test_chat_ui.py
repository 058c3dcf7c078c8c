"""The chat UI as people use it (issue 19), in real headless Chromium with the offline
model: the travel conversation at phone and desktop sizes with nothing wider than the
screen, tool results as tables, the approval decided by keyboard alone, the drawer,
copy, rename, the remembered goal, timestamps, axe-core's accessibility checks, and
the session cookie that keeps the token out of URLs and storage."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect
from temporalio.testing import WorkflowEnvironment

from onward.api.app import create_app
from onward.config import Settings
from tests.api.conftest import serve
from tests.e2e.browser import (
    ARTIFACTS,
    ASSISTANT,
    assert_fits,
    browser_session,
    send,
    serious_axe_violations,
    sign_in,
)

pytestmark = pytest.mark.e2e
expect.set_options(timeout=20_000)

EVENTS = "I'd like to see events in San Francisco in March"


async def approve_by_keyboard(page: Page) -> None:
    """From the message box, Shift+Tab back to the Approve button and press Enter."""
    await page.focus("#message-input")
    for _ in range(30):
        await page.keyboard.press("Shift+Tab")
        if await page.evaluate("document.activeElement.classList.contains('approve')"):
            await page.keyboard.press("Enter")
            return
    raise AssertionError("the Approve button is not reachable with the keyboard")


@pytest.mark.parametrize(
    ("width", "height"), [pytest.param(390, 844, id="phone"), pytest.param(1280, 800, id="desktop")]
)
async def test_travel_conversation_fits_and_reads(
    dev_env: WorkflowEnvironment, data_settings: Settings, width: int, height: int
) -> None:
    settings = data_settings
    phone = width < 768
    async with browser_session(dev_env, settings, height=height, width=width, bypass_csp=True) as s:
        page = s.page
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        app = create_app(settings, client=dev_env.client, api_settings=s.api)
        async with serve(app, s.port):
            await sign_in(page, s.port, s.api.token_file(settings.data_dir))
            sidebar = page.locator("#sidebar")
            if phone:
                # No conversation yet: the list opens as a drawer over the chat.
                await expect(sidebar).to_be_visible()
            assert await serious_axe_violations(page) == []
            await page.select_option("#goal-select", "travel")
            await page.click("#new-button")
            await expect(page.locator(".message.intro")).to_be_visible()
            if phone:
                await expect(sidebar).to_be_hidden()
            await assert_fits(page)

            # Shift+Enter is a new line, not a send.
            await page.fill("#message-input", "first line")
            await page.press("#message-input", "Shift+Enter")
            await page.keyboard.type("second line")
            await expect(page.locator("#message-input")).to_have_value("first line\nsecond line")
            await expect(page.locator(".message.user")).to_have_count(0)

            await send(page, EVENTS)
            events = page.locator(".tool-card[data-tool=find_events]")
            await expect(events.locator(".tool-summary")).to_contain_text(
                re.compile(r"^Found events San Francisco, March: \d+ events?$")
            )
            await expect(page.locator(ASSISTANT).last).to_contain_text("Where will you fly from?")
            await expect(page.locator("#status")).to_have_text("waiting for you")
            await send(page, "Chicago")
            flights = page.locator(".tool-card[data-tool=search_flights]")
            summary = flights.locator(".tool-summary")
            await expect(summary).to_contain_text(
                re.compile(r"^Searched flights Chicago → San Francisco, [\d-]+: \d+ flights$")
            )
            # The details are one click away, and the flights are a table there.
            await flights.locator("summary").click()
            table = flights.locator("table.result-table")
            await expect(table).to_be_visible()
            await expect(table.locator("thead th").first).to_have_text("flight number")
            found = int(re.findall(r"(\d+) flights$", await summary.inner_text())[0])
            await expect(table.locator("tbody tr")).to_have_count(found)
            await expect(page.locator(ASSISTANT).last).to_contain_text("email")
            await assert_fits(page)

            await send(page, "ada@example.com")
            card = page.locator(".tool-card[data-tool=create_invoice]")
            await expect(card.locator("button.approve")).to_be_visible()
            await expect(card.locator(".args")).to_contain_text("ada@example.com")
            assert await serious_axe_violations(page) == []
            await approve_by_keyboard(page)
            await expect(page.locator("#status")).to_have_text("waiting for you")
            await expect(card.locator(".tool-summary")).to_contain_text(re.compile(r"inv_\w+"))
            pay = card.locator(".tool-links a")
            await expect(pay).to_have_text("pay link")
            await expect(pay).to_have_attribute("href", re.compile(r"^http://[^ ]+/pay/inv_\w+$"))
            await expect(page.locator(ASSISTANT).last).to_contain_text(re.compile(r"inv_\w+"))
            # Screen readers hear finished messages (the last one here), never tokens.
            await expect(page.locator("#announcer")).to_contain_text(re.compile(r"inv_\w+"))
            assert await page.locator("#messages[aria-live]").count() == 0
            await assert_fits(page)
            assert await serious_axe_violations(page) == []
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / f"chat-travel-{width}x{height}.png")

            # Each message has its time and a copy button (shown on hover or focus).
            first = page.locator(".message.user").first
            await first.hover()
            await expect(first.locator("time")).to_have_attribute(
                "datetime", re.compile(r"^\d{4}-")
            )
            await first.locator("button.copy").click()
            await expect(first.locator("button.copy")).to_have_text("Copied")
            assert await page.evaluate("navigator.clipboard.readText()") == EVENTS

            # A title made from the goal and the first request, and renamed by the user.
            title = page.locator("#conversation-title")
            await expect(title).to_have_text("Travel: See events in San Francisco in March")
            await page.click("#rename-button")
            await page.fill("#title-input", "Kite trip")
            await page.press("#title-input", "Enter")
            await expect(title).to_have_text("Kite trip")
            await expect(page.locator(".conversations li.current .title")).to_have_text("Kite trip")

            if phone:
                # The drawer by keyboard: the menu button opens it, Escape closes it.
                await page.focus("#menu-button")
                await page.keyboard.press("Enter")
                await expect(sidebar).to_be_visible()
                await expect(page.locator("#menu-button")).to_have_attribute(
                    "aria-expanded", "true"
                )
                assert await serious_axe_violations(page) == []
                await page.screenshot(path=ARTIFACTS / f"chat-drawer-{width}x{height}.png")
                await page.keyboard.press("Escape")
                await expect(sidebar).to_be_hidden()
                assert await page.evaluate("document.activeElement.id") == "menu-button"

            # Auto-scroll follows new messages only when the reader is at the bottom.
            box = page.locator("#messages")
            replies = page.locator(ASSISTANT)
            for at_top in (True, False):
                await box.evaluate(
                    "(b, top) => { b.scrollTop = top ? 0 : b.scrollHeight; }", at_top
                )
                count = await replies.count()
                await page.evaluate(
                    """(cid) => fetch(`/v1/conversations/${cid}/messages`, {method: "POST",
                        headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({text: "what was the flight number?"})})""",
                    (await page.evaluate("location.hash")).lstrip("#"),
                )
                await expect(replies).to_have_count(count + 1)
                await expect(page.locator("#status")).to_have_text("waiting for you")
                gap = await box.evaluate("(b) => b.scrollHeight - b.scrollTop - b.clientHeight")
                top = await box.evaluate("(b) => b.scrollTop")
                assert (top == 0) if at_top else (gap < 48), (at_top, top, gap)

            # The goal picker remembers the last choice across a reload.
            if phone:
                await page.click("#menu-button")
            await page.select_option("#goal-select", "research")
            await page.reload()
            await expect(page.locator("#user-name")).to_have_text("local")
            await expect(page.locator("#goal-select")).to_have_value("research")
            await expect(title).to_have_text("Kite trip")


async def test_favicon_and_vocabulary_are_served(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    """No 404 for the icon on any page; the page's status words come from the server."""
    settings = data_settings
    async with browser_session(dev_env, settings, height=800) as s:
        page = s.page
        failed: list[str] = []
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        app = create_app(settings, client=dev_env.client, api_settings=s.api)
        async with serve(app, s.port):
            await sign_in(page, s.port, s.api.token_file(settings.data_dir))
            icon = await page.request.get(f"http://127.0.0.1:{s.port}/favicon.ico")
            assert icon.status == 200 and icon.headers["content-type"] == "image/svg+xml"
            await page.select_option("#goal-select", "travel")
            await page.click("#new-button")
            await expect(page.locator("#status")).to_have_text("waiting for you")
            words = await page.evaluate(
                "fetch('/v1/info').then((r) => r.json()).then((i) => i.vocabulary.status_words)"
            )
            assert words["waiting_for_user"] == "waiting for you"
        assert failed == []
