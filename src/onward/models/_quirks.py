"""What onward has learned about one OpenAI-compatible server, for this process.

Servers implement the OpenAI API unevenly: llama-cpp-python's server answers a
`tool_choice` of `"required"` with a 500 and streams tool calls it cannot assemble.
Each such lesson is learned once per process and per (base URL, model), so only the
first call that meets it pays one extra request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_ai.messages import ModelResponse as PaiResponse

ForcedChoice = Literal["required", "named", "auto"]
"""How a call that must use one tool asks for it: `"required"`, the tool by name, or
`"auto"` plus checking the answer (the tool list has only that tool)."""
FALLBACK: dict[ForcedChoice, ForcedChoice | None] = {
    "required": "named",
    "named": "auto",
    "auto": None,
}


@dataclass
class ServerQuirks:
    """Lessons about one server and model; shared by every `ProviderModel` on them."""

    forced_choice: ForcedChoice = "required"
    stream_tool_calls: bool = True
    """False once a streamed tool call from this server came back broken."""


_LEARNED: dict[tuple[str, str], ServerQuirks] = {}


def quirks_for(base_url: str | None, model: str) -> ServerQuirks:
    """The lessons learned about `model` at `base_url` in this process."""
    return _LEARNED.setdefault((base_url or "", model), ServerQuirks())


def forget_all() -> None:
    """Forget every lesson (tests)."""
    _LEARNED.clear()


def tool_choice_override(choice: ForcedChoice, tool: str) -> dict[str, Any] | None:
    """The request-body field that asks for `tool` the `choice` way (None: as is)."""
    if choice == "named":
        return {"tool_choice": {"type": "function", "function": {"name": tool}}}
    if choice == "auto":
        return {"tool_choice": "auto"}
    return None


def broken_stream(response: PaiResponse) -> str | None:
    """Why a streamed response looks assembled wrong, or None when it looks fine.

    Broken: tool-call arguments that are not JSON (fragments dropped or doubled), or a
    stream that ends with neither text nor calls while saying it ended on tool calls.
    """
    for call in response.tool_calls:
        args = call.args
        if isinstance(args, str) and args.strip():
            try:
                parsed = json.loads(args)
            except ValueError:
                return f"streamed arguments of `{call.tool_name}` are not JSON"
            if not isinstance(parsed, dict):
                return f"streamed arguments of `{call.tool_name}` are not an object"
    if (
        response.finish_reason == "tool_call"
        and not response.tool_calls
        and not (response.text or "").strip()
    ):
        return "the stream ended on tool calls but held none"
    return None
