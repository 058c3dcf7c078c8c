"""Local-model figures: seconds per decision and prompt tokens re-read per step on the
real llama.cpp server, with the old separate topic-check prompt and with one shared
prompt prefix for every call of a conversation.

    python -m bench.local_model [--model FILE.gguf] [--out bench/results/local_model.json]

Without `--model` it serves Qwen2.5 Coder 0.5B Instruct from the `onward[test]`
packages. The server is `onward model serve`; the re-read counts come from its own log
(llama-cpp-python prints `N prefix-match hit, remaining M prompt tokens to eval`; no
such line means the whole prompt was read again).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic_ai.direct import model_request
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings

from onward.agent.messages import (
    AssistantMessage,
    Message,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.agent.specs import GoalSpec, ToolSpec
from onward.config import Settings
from onward.models._pai_messages import to_pai_messages
from onward.models._prompts import guardrail_instructions, verdict_definition
from onward.models.base import GuardrailRequest, ModelRequest
from onward.models.providers import ProviderModel
from onward.processes import free_port, spawn, stop
from onward.testing.packaged_model import qwen_05b_gguf

REMAINING = re.compile(r"remaining (\d+) prompt tokens to eval")
GOAL = GoalSpec(
    name="weather",
    description="Tells the weather in a city.",
    instructions="You tell people the weather. Call get_weather with the city the user "
    "names, then answer in one short sentence with the forecast.",
    tools=[
        ToolSpec(
            name="get_weather",
            description="Today's weather forecast for a city.",
            parameters={
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name."}},
                "required": ["city"],
            },
        )
    ],
)
# A conversation of three steps: two user turns (each checked for topic) and the
# decision after a tool result.
STEPS: list[tuple[list[Message], bool]] = [
    ([UserMessage(text="What's the weather in Paris?")], True),
    (
        [
            ToolCallMessage(call_id="c1", tool="get_weather", args={"city": "Paris"}),
            ToolResultMessage(call_id="c1", tool="get_weather", ok=True, content="sunny, 21 C"),
        ],
        False,
    ),
    (
        [
            AssistantMessage(text="It is sunny in Paris today, 21 C."),
            UserMessage(text="And in Rome?"),
        ],
        True,
    ),
]


@dataclass
class Call:
    variant: str
    step: int
    kind: str
    seconds: float
    prompt_tokens: int
    reread_tokens: int


class ServerLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def reread(self, prompt_tokens: int) -> int:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        found = REMAINING.findall(text)
        return int(found[-1]) if found else prompt_tokens


async def old_topic_check(model: ProviderModel, history: list[Message], text: str) -> int:
    """The separate check older onward sent: its own system prompt and `verdict` tool."""
    messages = to_pai_messages(
        [], guardrail_instructions(GOAL), None, prompt=f"The user's new message: {text!r}"
    )
    params = ModelRequestParameters(
        output_mode="tool", output_tools=[verdict_definition()], allow_text_output=False
    )
    pai = model._pai  # the provider's own client, settings and base URL
    async with pai:
        response = await model_request(
            pai,
            messages,
            model_settings=ModelSettings(max_retries=0, timeout=600, max_tokens=300),
            model_request_parameters=params,
        )
    del history
    return response.usage.input_tokens


async def run_variant(variant: str, model: ProviderModel, log: ServerLog) -> list[Call]:
    calls: list[Call] = []
    history: list[Message] = []
    for step, (added, new_user_message) in enumerate(STEPS, 1):
        if new_user_message:
            text = added[-1].text if isinstance(added[-1], UserMessage) else ""
            before = history + added[:-1]
            log.mark()
            started = time.perf_counter()
            if variant == "separate prompts (before)":
                tokens = await old_topic_check(model, before, text)
            else:
                check = GuardrailRequest(
                    conversation_id="bench", goal=GOAL, messages=before, text=text
                )
                tokens = (await model.check_guardrail(check)).usage.input_tokens
            seconds = time.perf_counter() - started
            calls.append(Call(variant, step, "topic", seconds, tokens, log.reread(tokens)))
        history += added
        log.mark()
        started = time.perf_counter()
        request = ModelRequest(conversation_id="bench", goal=GOAL, messages=list(history))
        response = await model.decide(request)
        seconds = time.perf_counter() - started
        tokens = response.usage.input_tokens
        calls.append(Call(variant, step, "decision", seconds, tokens, log.reread(tokens)))
    return calls


@dataclass
class Result:
    model: str
    calls: list[Call]
    summary: dict[str, dict[str, float]]


async def measure(model_file: Path | None) -> Result:
    work = Path(tempfile.mkdtemp(prefix="onward-local-bench-"))
    path = model_file or qwen_05b_gguf(work)
    port = free_port()
    log_path = work / "serve.log"
    serve = ["model", "serve", "--model", str(path), "--name", "bench", "--port", str(port)]
    proc = spawn([sys.executable, "-m", "onward", *serve, "--ctx", "4096"], log=log_path)
    try:
        deadline = time.monotonic() + 300
        while "ONWARD_OPENAI_BASE_URL" not in log_path.read_text(errors="replace"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the server did not start:\n{log_path.read_text()}")
            await asyncio.sleep(0.2)
        settings = Settings(
            _env_file=None,  # pyright: ignore[reportCallIssue]
            model="openai:bench",
            openai_base_url=f"http://127.0.0.1:{port}/v1",
            model_timeout=600,  # pyright: ignore[reportArgumentType]
            model_max_tokens=200,
        )
        model = ProviderModel(settings.model, settings)
        log = ServerLog(log_path)
        calls: list[Call] = []
        for variant in ("separate prompts (before)", "shared prefix (after)"):
            calls += await run_variant(variant, model, log)
    finally:
        stop(proc)
    summary: dict[str, dict[str, float]] = {}
    for variant in {c.variant for c in calls}:
        mine = [c for c in calls if c.variant == variant]
        decisions = [c for c in mine if c.kind == "decision"]
        summary[variant] = {
            "s_per_decision": round(sum(c.seconds for c in decisions) / len(decisions), 2),
            "s_per_step_incl_topic_check": round(sum(c.seconds for c in mine) / len(STEPS), 2),
            "reread_tokens_per_step": round(sum(c.reread_tokens for c in mine) / len(STEPS), 1),
            "prompt_tokens_per_step": round(sum(c.prompt_tokens for c in mine) / len(STEPS), 1),
        }
    return Result(model=path.name, calls=calls, summary=summary)


def main() -> None:
    parser = argparse.ArgumentParser(description="Local-model figures on llama.cpp's server.")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results/local_model.json"))
    args = parser.parse_args()
    result = asyncio.run(measure(args.model))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(result), indent=2) + "\n")
    for variant, figures in sorted(result.summary.items()):
        print(f"{variant}: {json.dumps(figures)}")


if __name__ == "__main__":
    main()
