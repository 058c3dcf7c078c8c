"""`GgufModel`: a local GGUF model run with llama-cpp-python (the `local` extra).

Decoding is constrained by a grammar built from a JSON schema of onward's `Decision`
restricted to the goal's tools and their argument schemas, so the model can only emit
a well-formed decision: ask the user, call goal tools with schema-shaped arguments,
finish, or refuse an off-topic message. Schema features llama.cpp's grammar cannot
express (regex `pattern`s, `format`s) are left out of the grammar and checked after
generation, so a goal's schema can never crash the worker; a call that crashes it
anyway (llama.cpp is native code) is refused after a few attempts and reported.
llama-cpp-python is imported only when such a model is configured.

Multi-agent goals are only partly supported, on purpose: small local models plan and
review poorly, and a wrong plan fans out into many wasted child conversations.

- A review request is not sent to the model: the draft is approved as it is.
- A planner or a router gets the same ordinary decisions as any goal (ask, call its
  own tools, finish): it neither delegates nor hands off, and so answers by itself.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any, cast

from onward.agent.decisions import (
    AskUser,
    CallTools,
    Decision,
    Finish,
    Refuse,
    Review,
    ToolCall,
)
from onward.agent.messages import (
    AssistantMessage,
    Message,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from onward.agent.specs import GoalSpec
from onward.exceptions import MalformedModelOutput, ModelPermanentError, UserError
from onward.models._crash_guard import CrashGuard, call_key
from onward.models._gguf_schema import Schema, argument_problem, without_argument_schemas
from onward.models._gguf_schema import decision_schema as _decision_schema
from onward.models._prompts import ON_TOPIC_RULES, repair_note
from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    ModelRequest,
    ModelResponse,
    guardrail_by_decision,
)


def decision_schema(goal: GoalSpec, *, for_grammar: bool = False) -> Schema:
    """JSON schema of a decision that can only name the goal's tools (see
    `_gguf_schema.decision_schema`); `refuse` is offered when the goal's guardrail is on."""
    tools = [(t.name, t.parameters) for t in goal.tools]
    return _decision_schema(tools, refuse=goal.guardrail, for_grammar=for_grammar)


def _instructions(goal: GoalSpec) -> str:
    """The system prompt; it depends on the goal only, so every call of a conversation
    (decisions, repairs, the topic check) shares one prompt prefix and llama.cpp reuses
    its evaluation instead of reading it again."""
    tools = "\n".join(
        f"- {t.name}: {t.description}"
        + (f" Usually followed by: {', '.join(t.follow_ups)}." if t.follow_ups else "")
        + f" Arguments (JSON schema): {json.dumps(t.parameters)}"
        for t in goal.tools
    )
    finish = (
        "when the goal is complete (this ends the conversation)"
        if goal.end_on_finish
        else "when the goal is complete (the user may still follow up)"
    )
    lines = [
        f"{goal.instructions.strip()}\n\nYou are the agent for the goal `{goal.name}`: "
        f"{goal.description}\nTools:\n{tools or '- none'}\n",
        "Answer with one JSON object only:",
        '- {"kind": "ask", "text": "..."} to ask the user something and wait;',
        '- {"kind": "call_tools", "calls": [{"tool": "<name>", "args": {...}}]} to run tools;',
        '- {"kind": "finish", "answer": "..."} ' + finish + ";",
    ]
    if goal.guardrail:
        lines.append(
            '- {"kind": "refuse", "text": "..."} when the user\'s newest message is outside '
            "your purpose: one polite sentence saying what you can help with. " + ON_TOPIC_RULES
        )
    lines.append("Tool results come back to you; never invent one.")
    return "\n".join(lines)


def chat_messages(system: str, messages: list[Message], note: str | None = None) -> list[Schema]:
    """The transcript as chat turns that strictly alternate, starting with the user.

    Some chat templates (Gemma's among them) have no system role and reject two turns
    in a row from the same side, so the instructions open the first user turn and
    neighbouring turns are merged. A `note` (a repair hint) follows as a system turn:
    it is for the model, never the user's words (see `GgufModel` for templates that
    refuse it).
    """
    turns: list[tuple[str, str]] = [("user", system)]
    for m in messages:
        if isinstance(m, UserMessage):
            turns.append(("user", m.text))
        elif isinstance(m, AssistantMessage):
            turns.append(("assistant", json.dumps({"kind": "ask", "text": m.text})))
        elif isinstance(m, ToolCallMessage):
            call = {"kind": "call_tools", "calls": [{"tool": m.tool, "args": m.args}]}
            turns.append(("assistant", json.dumps(call)))
        elif isinstance(m, ToolResultMessage):
            body = json.dumps(m.content, default=str) if m.ok else f"error: {m.error}"
            turns.append(("user", f"Result of `{m.tool}` ({m.call_id}): {body}"))
        else:
            turns.append(("user", f"(Notice shown to the user: {m.text})"))
    if turns[-1][0] != "user":
        turns.append(("user", "(Continue.)"))
    merged: list[Schema] = []
    for role, text in turns:
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] += "\n\n" + text
        else:
            merged.append({"role": role, "content": text})
    if note:
        merged.append({"role": "system", "content": note})
    return merged


def _note_in_last_turn(messages: list[Schema]) -> list[Schema]:
    """For a template without a late system turn: the note joins the last user turn,
    marked as not coming from the user."""
    *rest, last_user, note = messages
    text = f"{last_user['content']}\n\n{note['content']}"
    return [*rest, {"role": "user", "content": text}]


def parse_decision(raw: str, request: ModelRequest, usage: Usage) -> Decision:
    """The decision in the model's JSON output, with fresh call ids, its arguments
    checked against each tool's full schema (the grammar had a reduced one).

    Raises:
        MalformedModelOutput: The output is not a valid decision for this goal.
    """
    try:
        # strict=False: small models put raw newlines inside strings.
        data = json.loads(raw, strict=False)
    except ValueError as exc:
        raise MalformedModelOutput(f"output is not JSON ({exc}): {raw[:200]!r}", usage) from exc
    if not isinstance(data, dict):
        raise MalformedModelOutput(f"output is not a JSON object: {raw[:200]!r}", usage)
    obj = cast(Schema, data)
    kind = obj.get("kind")
    text = obj.get("text")
    if kind == "ask" and isinstance(text, str) and text.strip():
        return AskUser(text=text.strip())
    if kind == "refuse" and isinstance(text, str) and text.strip():
        # Off-topic is judged only on a new user message; later it is just said.
        return Refuse(text=text.strip()) if request.check_topic else AskUser(text=text.strip())
    if kind == "finish" and isinstance(obj.get("answer"), str) and obj["answer"].strip():
        return Finish(answer=obj["answer"].strip())
    if kind == "call_tools" and isinstance(obj.get("calls"), list) and obj["calls"]:
        return CallTools(calls=_calls(cast(list[Any], obj["calls"]), request, usage))
    raise MalformedModelOutput(f"output is not a valid decision: {raw[:200]!r}", usage)


def _calls(items: list[Any], request: ModelRequest, usage: Usage) -> list[ToolCall]:
    seen = sum(isinstance(m, ToolCallMessage) for m in request.messages)
    calls: list[ToolCall] = []
    for i, item in enumerate(items):
        entry = cast(Schema, item) if isinstance(item, dict) else {}
        tool, raw = entry.get("tool"), entry.get("args", {})
        spec = request.goal.tool(tool) if isinstance(tool, str) else None
        if spec is None:
            raise MalformedModelOutput(f"unknown tool in output: {tool!r}", usage)
        if not isinstance(raw, dict):
            raise MalformedModelOutput(f"arguments of `{tool}` are not an object", usage)
        args = cast(Schema, raw)
        if problem := argument_problem(spec.parameters, args):
            raise MalformedModelOutput(f"arguments of `{tool}` are invalid: {problem}", usage)
        calls.append(ToolCall(call_id=f"gguf-{seen + i + 1}", tool=spec.name, args=args))
    return calls


class GgufModel:
    """A local GGUF model file, run in-process with llama-cpp-python.

    Args:
        path: The `.gguf` file.
        n_ctx: Context window in tokens.
        max_tokens: Longest output of one decision.
        n_threads: CPU threads (default: every core; llama-cpp-python's own default
            is half of them).
        crash_dir: Where attempts are marked while inside llama.cpp, so a call that
            keeps killing the worker is refused after a few (None: not guarded).
        llama: An already loaded `llama_cpp.Llama` (tests, custom loading).

    Raises:
        UserError: llama-cpp-python is not installed (`pip install 'onward[local]'`).
    """

    def __init__(
        self,
        path: str,
        *,
        n_ctx: int = 8192,
        max_tokens: int = 1024,
        n_threads: int | None = None,
        crash_dir: Path | None = None,
        llama: Any = None,
    ) -> None:
        if llama is None and importlib.util.find_spec("llama_cpp") is None:
            raise UserError(
                "`gguf:` models need llama-cpp-python: install onward[local] "
                "(`pip install 'onward[local]'`) or choose another ONWARD_MODEL"
            )
        self._path = Path(path).expanduser()
        self._n_ctx = n_ctx
        self._max_tokens = max_tokens
        self._n_threads = n_threads or os.cpu_count() or 1
        self._guard = CrashGuard(crash_dir)
        self._llama: Any = llama
        # llama.cpp contexts are not thread-safe: one generation at a time.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"gguf:{self._path.name}"

    @property
    def offline(self) -> bool:
        return False

    @property
    def n_threads(self) -> int:
        return self._n_threads

    def _model(self) -> Any:
        if self._llama is None:
            if not self._path.is_file():
                raise ModelPermanentError(f"GGUF model file {str(self._path)!r} does not exist")
            llama_cpp: Any = importlib.import_module("llama_cpp")
            self._llama = llama_cpp.Llama(
                model_path=str(self._path),
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                n_threads_batch=self._n_threads,
                verbose=False,
            )
        return self._llama

    def _grammar(self, schema: Schema) -> Any:
        """A llama.cpp grammar that only accepts JSON matching `schema`, verified by
        llama.cpp's own parser first: a grammar it rejects would crash the worker.

        Falls back to the decision with free-form tool arguments, then to any JSON
        (the decision is checked after generation either way).
        """
        llama_cpp: Any = importlib.import_module("llama_cpp")
        grammars: Any = importlib.import_module("llama_cpp.llama_grammar")
        for candidate in (schema, without_argument_schemas(schema)):
            try:
                text = str(grammars.json_schema_to_gbnf(json.dumps(candidate)))
            except Exception:  # the converter's asserts on what it cannot express
                continue
            if self._parses(llama_cpp, text):
                return grammars.LlamaGrammar.from_string(text, verbose=False)
        return grammars.LlamaGrammar.from_string(grammars.JSON_GBNF, verbose=False)

    def _parses(self, llama_cpp: Any, grammar: str) -> bool:
        vocab = self._model()._model.vocab
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True

    def _complete(self, messages: list[Schema], schema: Schema, key: str) -> tuple[str, Usage]:
        with self._lock, self._guard.attempt(key, "this call"):
            llama = self._model()
            grammar = self._grammar(schema)
            try:
                result: Any = self._generate(llama, messages, grammar)
            except Exception as exc:
                if messages[-1]["role"] != "system" or not _template_refused(exc):
                    raise
                result = self._generate(llama, _note_in_last_turn(messages), grammar)
        content = str(result["choices"][0]["message"].get("content") or "")
        counts: Any = result.get("usage") or {}
        usage = Usage(
            requests=1,
            input_tokens=int(counts.get("prompt_tokens", 0)),
            output_tokens=int(counts.get("completion_tokens", 0)),
            cost_usd=0.0,  # runs locally: a known price of zero
        )
        return content, usage

    def _generate(self, llama: Any, messages: list[Schema], grammar: Any) -> Any:
        return llama.create_chat_completion(
            messages=messages, grammar=grammar, temperature=0.2, max_tokens=self._max_tokens
        )

    async def decide(
        self, request: ModelRequest, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        """One grammar-constrained generation (in a thread: llama.cpp blocks).

        A review request generates nothing and approves (see the module docstring).

        Raises:
            MalformedModelOutput: Not a valid decision (arguments are checked against
                each tool's full schema).
            ModelPermanentError: The model file is missing, or this call already
                crashed the worker too often.
        """
        if request.review:
            return ModelResponse(
                decision=Review(approved=True), usage=Usage(), model_name=self.name
            )
        note = repair_note(request.repair_hint) if request.repair_hint else None
        messages = chat_messages(_instructions(request.goal), request.messages, note)
        key = call_key(
            str(self._path),
            request.conversation_id,
            json.dumps(messages),
            str(request.check_topic),
        )
        schema = decision_schema(request.goal, for_grammar=True)
        raw, usage = await asyncio.to_thread(self._complete, messages, schema, key)
        decision = parse_decision(raw, request, usage)
        visible = decision.text if isinstance(decision, AskUser) else None
        visible = decision.answer if isinstance(decision, Finish) else visible
        if visible and on_delta is not None:
            for i, word in enumerate(visible.split(" ")):
                await on_delta(word if i == 0 else " " + word)
        return ModelResponse(decision=decision, usage=usage, model_name=self.name)

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        """The topic check of older workflows (`guardrail_by_decision`)."""
        return await guardrail_by_decision(request, self.decide)


def _template_refused(exc: Exception) -> bool:
    """A chat template that raised on the late system turn (Jinja's own error)."""
    return type(exc).__module__.startswith("jinja2") or "role" in str(exc).lower()
