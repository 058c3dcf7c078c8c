"""What the chat UI shows while something is down or slow (issue 19), in real headless
Chromium: a message sent with no worker running shows as queued at once and is
answered when a worker is back; Temporal out of reach is a banner; Stop ends a slow
model call; "Fork from here" opens the fork (issue 21); another site cannot use the
session cookie."""

from __future__ import annotations

import re
import time

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.async_api import expect
from temporalio.testing import WorkflowEnvironment

from onward.agent.decisions import AskUser
from onward.api.app import create_app
from onward.config import Settings
from onward.models.offline import OfflineModel
from onward.processes import free_port
from onward.testing import RateLimit, ScriptedModel
from onward.worker import build_workers, running_workers
from tests.api.conftest import serve
from tests.e2e.browser import ARTIFACTS, ASSISTANT, browser_session, send, sign_in
from tests.workflows import toolbox

pytestmark = pytest.mark.e2e
expect.set_options(timeout=20_000)
assert toolbox.MATH.name == "test-math"  # importing registers the goal

EVENTS = "I'd like to see events in San Francisco in March"


def needs_route(app: FastAPI, method: str, path: str) -> None:
    """The UI calls routes another branch adds: say so, loudly, until they exist."""
    found = method.lower() in app.openapi().get("paths", {}).get(path, {})
    if not found:
        reason = f"the API has no `{method} {path}` yet (branch `status` adds it)"
        print(f"XFAIL: {reason}")
        pytest.xfail(reason)


async def test_message_sent_without_a_worker_is_queued_then_answered(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    settings = data_settings
    async with browser_session(dev_env, settings, height=900, workers=False) as s:
        page = s.page
        app = create_app(settings, client=dev_env.client, api_settings=s.api)
        async with serve(app, s.port):
            async with running_workers(build_workers(dev_env.client, settings, OfflineModel())):
                await sign_in(page, s.port, s.api.token_file(settings.data_dir))
                await page.select_option("#goal-select", "travel")
                await page.click("#new-button")
                await send(page, EVENTS)
                await expect(page.locator(ASSISTANT).last).to_contain_text("fly from")
                await expect(page.locator("#status")).to_have_text("waiting for you")

            # No worker now: the message is on screen, marked, within a second.
            await page.fill("#message-input", "Chicago")
            sent = time.monotonic()
            await page.press("#message-input", "Enter")
            queued = page.locator(".message.user.queued")
            await expect(queued.locator(".queued-mark")).to_have_text("queued", timeout=1_000)
            assert time.monotonic() - sent < 1.0
            await expect(queued.locator(".text")).to_have_text("Chicago")
            # The stream's `worker` event: a banner says why nothing happens.
            banner = page.locator("#banner")
            await expect(banner).to_contain_text("No worker is running", timeout=60_000)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "chat-queued.png")

            async with running_workers(build_workers(dev_env.client, settings, OfflineModel())):
                # The agent takes it: the mark goes, the message stays, the reply comes.
                await expect(queued).to_have_count(0, timeout=60_000)
                await expect(banner).to_be_hidden()
                users = page.locator(".message.user .text")
                await expect(users).to_have_text([EVENTS, "Chicago"])
                await expect(page.locator(".tool-card[data-tool=search_flights]")).to_be_visible()
                await expect(page.locator(ASSISTANT).last).to_contain_text("email")

                # Retry the last turn: the same text again, as a new message.
                await expect(page.locator("#retry-button")).to_be_visible()
                await page.click("#retry-button")
                await expect(users).to_have_text([EVENTS, "Chicago", "Chicago"])
                await expect(queued).to_have_count(0)
                await expect(page.locator("#status")).to_have_text("waiting for you")


async def test_temporal_out_of_reach_is_a_banner(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    settings = data_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with browser_session(dev_env, settings, height=800, workers=False) as s:
        page = s.page
        async with serve(create_app(settings, api_settings=s.api), s.port):
            await sign_in(page, s.port, s.api.token_file(settings.data_dir))
            banner = page.locator("#banner")
            await expect(banner).to_contain_text("cannot reach Temporal")
            await expect(banner).to_contain_text(settings.target_address)
            await page.screenshot(path=ARTIFACTS / "chat-temporal-down.png")


async def test_a_retried_model_call_is_told_in_words(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    settings = data_settings
    model = ScriptedModel([RateLimit(retry_after_s=3), AskUser(text="Back again.")])
    async with browser_session(dev_env, settings, height=800, model=model) as s:
        page = s.page
        async with serve(create_app(settings, client=dev_env.client, api_settings=s.api), s.port):
            await sign_in(page, s.port, s.api.token_file(settings.data_dir))
            await page.select_option("#goal-select", "test-math")
            await page.click("#new-button")
            await send(page, "hello")
            words = page.locator("#status-words")
            await expect(words).to_contain_text(
                re.compile(r"The model call is being retried \(attempt \d+\b.*next try in \d+ s")
            )
            await expect(page.locator("#status")).to_have_text("retrying the model")
            await page.screenshot(path=ARTIFACTS / "chat-retrying.png")
            await expect(page.locator(ASSISTANT).last.locator(".text")).to_have_text("Back again.")
            await expect(words).to_be_hidden()


async def test_stop_ends_a_slow_model_call(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    settings = data_settings
    slow = " ".join(f"word{i}" for i in range(200))
    model = ScriptedModel(
        [AskUser(text=slow), AskUser(text="Here is the next answer.")], word_delay_s=0.1
    )
    async with browser_session(dev_env, settings, height=800, model=model) as s:
        page = s.page
        app = create_app(settings, client=dev_env.client, api_settings=s.api)
        needs_route(app, "POST", "/v1/conversations/{conversation_id}/stop")
        async with serve(app, s.port):
            await sign_in(page, s.port, s.api.token_file(settings.data_dir))
            await page.select_option("#goal-select", "test-math")
            await page.click("#new-button")
            await send(page, "tell me a long story")
            await expect(page.locator(".message.streaming")).to_contain_text("word3")
            await page.click("#stop-button")
            await expect(page.locator("#status")).to_have_text("waiting for you")
            assert slow not in await page.locator("#messages").inner_text()
            await send(page, "and now?")
            await expect(page.locator(ASSISTANT).last.locator(".text")).to_have_text(
                "Here is the next answer."
            )


async def test_fork_from_here_opens_the_fork(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    settings = data_settings
    async with browser_session(dev_env, settings, height=900) as s:
        page = s.page
        app = create_app(settings, client=dev_env.client, api_settings=s.api)
        needs_route(app, "POST", "/v1/conversations/{conversation_id}/fork")
        async with serve(app, s.port):
            await sign_in(page, s.port, s.api.token_file(settings.data_dir))
            await page.select_option("#goal-select", "travel")
            await page.click("#new-button")
            original = await page.evaluate("location.hash")
            await send(page, EVENTS)
            await expect(page.locator(ASSISTANT).last).to_contain_text("fly from")
            await send(page, "Chicago")
            await expect(page.locator(ASSISTANT).last).to_contain_text("email")

            chicago = page.locator(".message.user", has_text="Chicago")
            await chicago.hover()
            await chicago.locator("button.fork").click()
            await expect(page).not_to_have_url(f"http://127.0.0.1:{s.port}/{original}")
            await expect(page.locator(".message.user .text")).to_have_text([EVENTS])
            await expect(page.locator(".conversations li")).to_have_count(2)
            await send(page, "Denver")
            flights = page.locator(".tool-card[data-tool=search_flights] .tool-summary")
            await expect(flights).to_contain_text("Denver → San Francisco")


async def test_another_site_cannot_use_the_session_cookie(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    settings = data_settings
    async with browser_session(dev_env, settings, height=800) as s:
        page = s.page
        app = create_app(settings, client=dev_env.client, api_settings=s.api)
        async with serve(app, s.port):
            await sign_in(page, s.port, s.api.token_file(settings.data_dir))
            # Another site (`localhost` is not `127.0.0.1`) served by a real server,
            # whose page posts to the API with the user's cookie "included".
            elsewhere = FastAPI()
            elsewhere.get("/")(lambda: HTMLResponse("<p>elsewhere</p>"))
            async with serve(elsewhere) as other_url:
                other = await page.context.new_page()
                await other.goto(other_url.replace("127.0.0.1", "localhost"))
                target = f"http://127.0.0.1:{s.port}/v1/conversations"
                async with other.expect_response(target) as got:
                    await other.evaluate(
                        """(url) => fetch(url, {method: "POST", mode: "no-cors",
                            credentials: "include", headers: {"Content-Type": "text/plain"},
                            body: JSON.stringify({goal: "travel"})}).catch(() => null)""",
                        target,
                    )
                response = await got.value
                assert response.status == 401
                assert "cookie" not in await response.request.all_headers()
            listed = await page.evaluate(
                "fetch('/v1/conversations').then((r) => r.json()).then((d) => d.conversations)"
            )
            assert listed == []
