"""Reading a conversation while no worker runs it: a prompt 503 that says so, not a
request held until Temporal gives up (real dev server, a worker that is stopped)."""

from __future__ import annotations

import httpx
from temporalio.testing import WorkflowEnvironment

from onward.agent.decisions import AskUser
from onward.api.app import create_app
from onward.api.worker_watch import WORKER_DOWN_DETAIL
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.testing import ScriptedModel
from onward.worker import build_workers, running_workers
from tests.api.conftest import ALICE, api_settings
from tests.conftest import catalog_for


async def test_reading_a_conversation_no_worker_runs_says_so(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    catalog = catalog_for(settings)
    convs = Conversations(dev_env.client, settings, catalog)
    model = ScriptedModel(lambda _request: AskUser(text="What next?"))
    app = create_app(settings, client=dev_env.client, api_settings=api_settings(), catalog=catalog)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as http:
        async with running_workers(build_workers(dev_env.client, settings, model, catalog=catalog)):
            created = await http.post(
                "/v1/conversations",
                json={"goal": "test-math", "message": "hello"},
                headers=ALICE,
            )
            assert created.status_code == 201, created.text
            cid = created.json()["id"]
            await convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
            live = await http.get(f"/v1/conversations/{cid}", headers=ALICE)
            assert live.status_code == 200 and live.json()["status"] == "waiting_for_user"
        # The worker is gone: the read fails with a reason a person can act on.
        down = await http.get(f"/v1/conversations/{cid}", headers=ALICE)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "worker_unavailable"
        assert down.json()["error"]["reason"] == WORKER_DOWN_DETAIL
        # A message sent meanwhile is still taken (the server keeps it for the worker).
        sent = await http.post(
            f"/v1/conversations/{cid}/messages", json={"text": "still there?"}, headers=ALICE
        )
        assert sent.status_code == 202, sent.text
    await dev_env.client.get_workflow_handle(cid).terminate("test over")
