"""A model call that kills its worker is refused after a bounded number of attempts.

Each attempt is a real process that dies of a real segmentation fault (a read of
address 0) inside the stand-in native call, as llama-cpp-python does on a grammar
llama.cpp cannot parse.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from onward.models._crash_guard import CrashGuard

ATTEMPT = r"""
import asyncio, ctypes, sys
from pathlib import Path

from onward.agent.messages import UserMessage
from onward.agent.specs import GoalSpec
from onward.exceptions import ModelPermanentError
from onward.models.base import ModelRequest
from onward.models.gguf import GgufModel


class Native:
    def create_chat_completion(self, **kwargs):
        if "crash" in kwargs["messages"][-1]["content"]:
            ctypes.string_at(0)  # a real segmentation fault in the calling thread
        return {"choices": [{"message": {"content": '{"kind": "ask", "text": "Hi!"}'}}]}


class Model(GgufModel):
    def _grammar(self, schema):
        return schema


goal = GoalSpec(name="g", description="Greets.", instructions="Greet.", tools=[])
model = Model("/models/x.gguf", crash_dir=Path(sys.argv[1]), llama=Native())
request = ModelRequest(conversation_id="c", goal=goal, messages=[UserMessage(text=sys.argv[2])])
try:
    print(asyncio.run(model.decide(request)).decision.kind)
except ModelPermanentError as exc:
    print(exc)
    sys.exit(3)
"""


def attempt(crash_dir: Path, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ATTEMPT, str(crash_dir), text],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_call_that_keeps_crashing_the_worker_is_refused_on_the_third_attempt(
    tmp_path: Path,
) -> None:
    crash_dir = tmp_path / "gguf-attempts"
    for n in (1, 2):
        died = attempt(crash_dir, "please crash")
        assert died.returncode == -signal.SIGSEGV, died.stderr
        assert CrashGuard(crash_dir).crashes(_only_key(crash_dir)) == n
    refused = attempt(crash_dir, "please crash")
    assert refused.returncode == 3, refused.stderr
    assert "the local model crashed the worker 2 times on this call" in refused.stdout
    # Another call of the same worker is not affected, and leaves no marker behind.
    fine = attempt(crash_dir, "hello")
    assert (fine.returncode, fine.stdout.strip()) == (0, "ask")
    assert len(list(crash_dir.glob("*.attempt"))) == 2


def test_a_call_that_raises_leaves_no_marker(tmp_path: Path) -> None:
    guard = CrashGuard(tmp_path)
    for _ in range(3):
        try:
            with guard.attempt("k"):
                raise ValueError("a Python error is not a crash")
        except ValueError:
            pass
    assert guard.crashes("k") == 0
    with guard.attempt("k"):
        assert guard.crashes("k") == 1  # while inside, the attempt is marked
    assert guard.crashes("k") == 0


def _only_key(crash_dir: Path) -> str:
    keys = {p.name.split(".")[0] for p in crash_dir.glob("*.attempt")}
    assert len(keys) == 1
    return keys.pop()
