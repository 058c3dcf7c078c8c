"""Multi-agent conversations in the web chat, in real headless Chromium with the
offline model: a trip planner's three travel agents each ask for an invoice approval,
decided on the planner's page; a concierge hands the conversation to an agent."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect
from temporalio.testing import WorkflowEnvironment

from onward.api.app import create_app
from onward.api.auth import read_local_token
from onward.config import Settings
from tests.api.conftest import serve
from tests.e2e.browser import ARTIFACTS, ASSISTANT, browser_session, send

pytestmark = pytest.mark.e2e

REQUEST = "Plan me three vacations next year, flying from Denver; invoice ana@example.com"
INVOICE = re.compile(r"\binv_[0-9a-f]+")
# Three sub-agents, their model calls and tool activities sit behind some steps.
expect.set_options(timeout=30_000)


async def test_trip_planner_with_surfaced_approvals_in_the_browser(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    settings = data_settings
    async with browser_session(dev_env, settings, height=2000) as s:
        page, convs, local, port = s.page, s.convs, s.api, s.port
        async with serve(create_app(settings, client=dev_env.client, api_settings=local), port):
            token = read_local_token(local.token_file(settings.data_dir))
            assert token is not None
            await page.goto(f"http://127.0.0.1:{port}/?token={token}")
            await expect(page.locator("#user-name")).to_have_text("local")

            await page.select_option("#goal-select", "trip-planner")
            await page.click("#new-button")
            await expect(page.locator(".message.intro")).to_contain_text("How many trips")
            cid = (await page.evaluate("location.hash")).lstrip("#")
            await send(page, REQUEST)

            # The plan, readable: three steps, each for the travel agent.
            plan = page.locator(".tool-card[data-tool=delegate]")
            steps = plan.locator("ol.plan-steps.args > li")
            await expect(steps).to_have_count(3)
            for k in range(3):
                await expect(steps.nth(k)).to_contain_text(f"step{k + 1} travel")
                await expect(steps.nth(k)).to_contain_text(f"option {k + 1} of 3")

            # Each travel agent asks to invoice; the cards say who asked.
            asked = page.locator(".tool-card", has_text="asked by travel")
            await expect(asked).to_have_count(3)
            await expect(page.locator("#approval-badge")).to_have_text("3 approvals pending")
            await expect(page.locator("#status")).to_have_text("waiting for approval")
            running = page.locator(".agent-line.running")
            await expect(running).to_have_count(3)
            for k in range(3):
                await expect(running.nth(k)).to_have_text(f"travel p1.step{k + 1} running")
            snap = await convs.snapshot(cid)
            children = {p.conversation_id for p in snap.pending_approvals}
            assert children == {f"{cid}~p1.step{k}" for k in (1, 2, 3)}
            for k in range(3):
                card = asked.nth(k)
                await expect(card).to_have_attribute("data-tool", "create_invoice")
                await expect(card.locator(".args")).to_contain_text("ana@example.com")
                await expect(card.locator(".tool-agent")).to_have_attribute(
                    "title", re.compile(rf"^{re.escape(cid)}~p1\.step[123]$")
                )
                await card.locator("button.approve").click()
                await expect(card.locator(".tool-state")).to_have_text("approved")

            # The agents finish, the reviewer approves, and the planner answers.
            # The planner answers and stays open for a follow-up (it does not end).
            await expect(page.locator("#status")).to_have_text("waiting for you")
            finished = page.locator(".agent-line.done")
            await expect(finished).to_have_count(3)
            await expect(finished).to_have_text(
                [re.compile(r"^travel p1\.step[123] finished$")] * 3
            )
            await expect(page.locator(".agent-line.running")).to_have_count(0)
            await expect(page.locator(".agent-line.review")).to_have_text(["Reviewer approved"])
            await expect(page.locator("#approval-badge")).to_be_hidden()
            outcomes = plan.locator("ol.plan-steps.result > li.done")
            await expect(outcomes).to_have_count(3)
            await expect(plan.locator(".tool-state")).to_have_text("done")
            await expect(outcomes.first).to_contain_text("finished")
            await expect(outcomes.first).to_contain_text(INVOICE)

            snap = await convs.snapshot(cid)
            final = [m.text for m in snap.messages if m.kind == "assistant"][-1]
            invoices = INVOICE.findall(final)
            assert len(set(invoices)) == 3, final
            answer = page.locator(ASSISTANT).last
            for invoice in invoices:
                await expect(answer).to_contain_text(invoice)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "browser-multi-agent.png", full_page=True)

            # A concierge hands the conversation over: a line says so, the header too.
            await page.select_option("#goal-select", "concierge")
            await page.click("#new-button")
            await expect(page).not_to_have_url(re.compile(re.escape(cid)))
            await expect(page.locator(".message.intro")).to_contain_text("What do you need")
            await expect(page.locator("#conversation-goal")).to_have_text("concierge")
            await send(page, "I want to fly to an event in Chicago in May")
            await expect(page.locator(".agent-line.handoff")).to_have_text(
                ["Now talking to travel"]
            )
            await expect(page.locator("#conversation-goal")).to_have_text("travel")
