"""A worker process for the eval crash test: the real workers, with a scripted model
that can stop dead inside a chosen eval conversation's model call, so the test can
SIGKILL the worker there.

`python -m tests.integration.eval_worker` reads `ONWARD_*` settings like `onward worker`
plus `EVAL_DIR` (where tools log what they did, in `effects.sqlite`, and where `reached`
is written) and `EVAL_STOP_IN` (a conversation id suffix such as `~case2`: that
conversation's model call after its second user message stops, on its first attempt).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from temporalio import activity

from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
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
from onward.testing import ScriptedModel, Step
from onward.tools import ToolContext, tool
from onward.worker import run_worker

EFFECTS = "effects.sqlite"


@tool
def add_logged(a: int, b: int, ctx: ToolContext) -> int:
    """Add two integers (and log the call: a side effect the test can count)."""
    with closing(sqlite3.connect(Path(os.environ["EVAL_DIR"]) / EFFECTS, timeout=30)) as db, db:
        db.execute("CREATE TABLE IF NOT EXISTS runs (key TEXT, a INTEGER, b INTEGER)")
        db.execute("INSERT INTO runs VALUES (?, ?, ?)", (ctx.idempotency_key, a, b))
    return a + b


EVAL_MATH = Goal(
    name="test-eval-math",
    description="Adds numbers.",
    instructions="Add 1 to the number the user gives, with the tool.",
    tools=[add_logged],
)


def math_script(request: ModelRequest) -> Step:
    last = request.messages[-1]
    if isinstance(last, UserMessage):
        if not last.text[0].isdigit():
            return Finish(answer="Glad to help.")
        turn = sum(isinstance(m, UserMessage) for m in request.messages)
        args = {"a": int(last.text), "b": 1}
        return CallTools(calls=[ToolCall(call_id=f"c{turn}", tool="add_logged", args=args)])
    assert isinstance(last, ToolResultMessage)
    return AskUser(text=f"= {last.content}")


class StopIn:
    """The scripted math model, stopping dead once in the chosen conversation."""

    def __init__(self, suffix: str, directory: Path) -> None:
        self._inner = ScriptedModel(math_script)
        self._suffix = suffix
        self._dir = directory

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def offline(self) -> bool:
        return False

    async def decide(
        self, request: ModelRequest, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        users = sum(isinstance(m, UserMessage) for m in request.messages)
        if (
            self._suffix
            and request.conversation_id.endswith(self._suffix)
            and users == 2
            and isinstance(request.messages[-1], UserMessage)
            and activity.info().attempt == 1
        ):
            (self._dir / "reached").write_text(request.conversation_id)
            await asyncio.Event().wait()  # until SIGKILL
        return await self._inner.decide(request, on_delta)

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        return await self._inner.check_guardrail(request)


async def main() -> None:
    settings = Settings()
    model = StopIn(os.environ.get("EVAL_STOP_IN", ""), Path(os.environ["EVAL_DIR"]))
    catalog = GoalCatalog.discover(settings.goal_modules, extra=[EVAL_MATH])
    await run_worker(settings, await connect(settings), model, catalog)


if __name__ == "__main__":
    asyncio.run(main())
