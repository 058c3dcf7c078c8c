"""A worker process for the store-crash tests: the real workers with a model that can
stop dead at a chosen point of a model call, so the test can SIGKILL it there.

`python -m tests.integration.crash_worker` reads `ONWARD_*` settings like `onward worker`
plus `CRASH_AT` (`before_model`: after the activity stored the transcript, before the
model answers; `after_model`: after the model answered, before the activity returns) and
`CRASH_DIR`, where it writes `reached` once it is stopped at that point.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from temporalio import activity

from onward.agent.decisions import CallTools, Finish, ToolCall
from onward.agent.messages import ToolResultMessage, UserMessage
from onward.client.connect import connect
from onward.config import Settings
from onward.goals import GoalCatalog
from onward.goals.base import Goal
from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    ModelRequest,
    ModelResponse,
)
from onward.testing import ScriptedModel
from onward.tools import ToolContext, tool
from onward.worker import run_worker

EFFECTS = "effects.sqlite"


@tool
def save_note(text: str, ctx: ToolContext) -> str:
    """Save a note (a side effect, idempotent by the call's key)."""
    path = Path(os.environ["CRASH_DIR"]) / EFFECTS
    with closing(sqlite3.connect(path, timeout=30)) as db, db:
        db.execute("CREATE TABLE IF NOT EXISTS runs (key TEXT, text TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS notes (key TEXT PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO runs VALUES (?, ?)", (ctx.idempotency_key, text))
        db.execute("INSERT OR IGNORE INTO notes VALUES (?, ?)", (ctx.idempotency_key, text))
    return f"saved: {text}"


NOTES = Goal(
    name="test-notes",
    description="Saves notes.",
    instructions="Save what the user asks.",
    tools=[save_note],
)


def notes_script(request: ModelRequest) -> CallTools | Finish:
    last = request.messages[-1]
    if isinstance(last, UserMessage):
        call = ToolCall(call_id="save-1", tool="save_note", args={"text": last.text})
        return CallTools(calls=[call])
    assert isinstance(last, ToolResultMessage)
    return Finish(answer=f"Done: {last.content}")


class StopAt:
    """The scripted notes model, stopping dead on the first attempt of the first call."""

    def __init__(self, at: str, directory: Path) -> None:
        self._inner = ScriptedModel(notes_script)
        self._at = at
        self._dir = directory

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def offline(self) -> bool:
        return False

    async def _stop_here(self, point: str) -> None:
        if self._at == point and activity.info().attempt == 1:
            (self._dir / "reached").write_text(point)
            await asyncio.Event().wait()  # until SIGKILL

    async def decide(
        self, request: ModelRequest, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        await self._stop_here("before_model")
        response = await self._inner.decide(request, on_delta)
        await self._stop_here("after_model")
        return response

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        return await self._inner.check_guardrail(request)


async def main() -> None:
    settings = Settings()
    model = StopAt(os.environ.get("CRASH_AT", ""), Path(os.environ["CRASH_DIR"]))
    catalog = GoalCatalog.discover(settings.goal_modules, extra=[NOTES])
    await run_worker(settings, await connect(settings), model, catalog)


if __name__ == "__main__":
    asyncio.run(main())
