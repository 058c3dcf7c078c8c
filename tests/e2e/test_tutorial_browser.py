"""The Temporal tutorial's travel script typed into the chat UI as its reader types it
(issue 14), in real headless Chromium with the offline model: the event named on the
page is the one the reader asks to attend, the off-topic order is refused without a
tool call, a sentence names the origin, and exactly one invoice comes out."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect
from temporalio.testing import WorkflowEnvironment

from onward.api.app import create_app
from onward.config import Settings, get_settings
from onward.examples.ledger import ledger_for
from tests.api.conftest import serve
from tests.e2e.browser import (
    ARTIFACTS,
    ASSISTANT,
    browser_session,
    screenshot_whole,
    send,
    sign_in,
)

pytestmark = pytest.mark.e2e
expect.set_options(timeout=30_000)


async def say(page: Page, text: str) -> str:
    """Send `text`; the agent's reply once its turn is over."""
    before = await page.locator(ASSISTANT).count()
    await send(page, text)
    await expect(page.locator(ASSISTANT)).to_have_count(before + 1)
    await expect(page.locator("#status")).to_have_text("waiting for you")
    return await page.locator(ASSISTANT).last.locator(".text").inner_text()


@pytest.mark.parametrize(
    ("width", "height"), [pytest.param(1280, 800, id="desktop"), pytest.param(390, 844, id="phone")]
)
async def test_the_tutorial_script_in_the_chat(
    dev_env: WorkflowEnvironment, data_settings: Settings, width: int, height: int
) -> None:
    settings = data_settings
    async with browser_session(dev_env, settings, height=height, width=width) as s:
        page = s.page
        app = create_app(settings, client=dev_env.client, api_settings=s.api)
        async with serve(app, s.port):
            await sign_in(page, s.port, s.api.token_file(settings.data_dir))
            await page.select_option("#goal-select", "travel")
            await page.click("#new-button")
            await expect(page.locator(".message.intro")).to_be_visible()
            cards = page.locator(".tool-card")

            found = await say(page, "I'd like to see events in San Francisco in March")
            events = page.locator(".tool-card[data-tool=find_events]")
            await expect(events.locator(".tool-summary")).to_contain_text("San Francisco, March")
            # The event's name as the page shows it (bold in the agent's reply).
            name = await page.locator(ASSISTANT).last.locator("strong").first.inner_text()
            assert name and name in found and found.endswith("Where will you fly from?")

            attend = await say(page, f"I would like to attend the {name}")
            assert name in attend
            await expect(cards).to_have_count(1)

            refused = await say(page, "I would like to order two double cheeseburgers.")
            assert "trip" in refused and refused.endswith("Where will you fly from?")
            await expect(cards).to_have_count(1)  # refused: no tool call
            await expect(page.locator("#message-input")).to_be_enabled()

            flights = await say(page, "I'm sorry. I'd like to depart from Austin, TX")
            search = page.locator(".tool-card[data-tool=search_flights] .tool-summary")
            await expect(search).to_contain_text("Searched flights Austin → San Francisco")
            assert "Shall I create the invoice for it?" in flights

            asked = await say(page, "Yes")
            assert asked.endswith("What email address should I send the invoice to?")
            await send(page, "ada@example.com")
            invoice = page.locator(".tool-card[data-tool=create_invoice]")
            await invoice.locator("button.approve").click()
            answer = page.locator(ASSISTANT).last.locator(".text")
            await expect(answer).to_contain_text("/pay/")
            await expect(page.locator("#status")).to_have_text("waiting for you")
            done = await answer.inner_text()
            ledger = ledger_for(get_settings())
            [row] = ledger.rows("invoices")
            assert f"/pay/{row['id']}" in done and name in done
            await expect(invoice.locator(".tool-links a")).to_have_attribute(
                "href", re.compile(f"/pay/{row['id']}$")
            )
            await expect(page.locator("#status")).to_have_text("waiting for you")
            ARTIFACTS.mkdir(exist_ok=True)
            await screenshot_whole(page, ARTIFACTS / f"tutorial-{width}x{height}.png")
            assert len(ledger.rows("invoices")) == 1
