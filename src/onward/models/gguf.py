"""`GgufModel`: a local GGUF model run with llama-cpp-python (the `local` extra).

Decoding is constrained by a grammar built from a JSON schema of onward's `Decision`
restricted to the goal's tools and their argument schemas, so the model can only emit
a well-formed decision: ask the user, call goal tools with schema-shaped arguments, or
finish. llama-cpp-python is imported only when such a model is configured.

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
import threading
from pathlib import Path
from typing import Any, cast

from onward.agent.decisions import (
    AskUser,
    CallTools,
    Decision,
    Finish,
    GuardrailVerdict,
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
from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    ModelRequest,
    ModelResponse,
)

Schema = dict[str, Any]
TEXT_MAX_CHARS = 400

GUARDRAIL_SCHEMA: Schema = {
    "type": "object",
    "properties": {"allowed": {"type": "boolean"}, "reply": {"type": "string"}},
    "required": ["allowed", "reply"],
    "additionalProperties": False,
}


def _rewrite_refs(node: Any, prefix: str) -> Any:
    """Point `#/$defs/X` at the hoisted `#/$defs/<prefix>X`."""
    if isinstance(node, dict):
        out: Schema = {}
        for key, value in cast(Schema, node).items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/$defs/" + prefix + value.removeprefix("#/$defs/")
            elif key != "$defs":
                out[key] = _rewrite_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in cast(list[Any], node)]
    return node


def _object(properties: Schema, required: list[str]) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def decision_schema(goal: GoalSpec) -> Schema:
    """JSON schema of a decision that can only name the goal's tools.

    Each tool's own `$defs` are hoisted to the root under a per-tool prefix, because
    the grammar converter resolves `$ref`s from the root.
    """
    defs: Schema = {}
    calls: list[Schema] = []
    for spec in goal.tools:
        prefix = f"{spec.name}__"
        for name, sub in cast(Schema, spec.parameters.get("$defs") or {}).items():
            defs[prefix + name] = _rewrite_refs(sub, prefix)
        args = _rewrite_refs(spec.parameters, prefix)
        calls.append(_object({"tool": {"const": spec.name}, "args": args}, ["tool", "args"]))
    # A bounded string makes the grammar close it: small models otherwise ramble until
    # the token limit and leave the JSON unterminated.
    text = {"type": "string", "minLength": 1, "maxLength": TEXT_MAX_CHARS}
    variants = [_object({"kind": {"const": "ask"}, "text": text}, ["kind", "text"])]
    if calls:
        items = {"oneOf": calls}
        batch = {"type": "array", "items": items, "minItems": 1}
        variants.append(
            _object({"kind": {"const": "call_tools"}, "calls": batch}, ["kind", "calls"])
        )
    variants.append(_object({"kind": {"const": "finish"}, "answer": text}, ["kind", "answer"]))
    schema: Schema = {"oneOf": variants}
    if defs:
        schema["$defs"] = defs
    return schema


def _instructions(goal: GoalSpec) -> str:
    tools = "\n".join(
        f"- {t.name}: {t.description} Arguments (JSON schema): {json.dumps(t.parameters)}"
        for t in goal.tools
    )
    return (
        f"{goal.instructions.strip()}\n\nYou are the agent for the goal `{goal.name}`: "
        f"{goal.description}\nTools:\n{tools or '- none'}\n\n"
        "Answer with one JSON object only:\n"
        '- {"kind": "ask", "text": "..."} to ask the user something and wait;\n'
        '- {"kind": "call_tools", "calls": [{"tool": "<name>", "args": {...}}]} to run tools;\n'
        '- {"kind": "finish", "answer": "..."} when the goal is complete.\n'
        "Tool results come back to you; never invent one."
    )


def chat_messages(system: str, messages: list[Message], extra: str | None = None) -> list[Schema]:
    """The transcript as chat turns that strictly alternate, starting with the user.

    Some chat templates (Gemma's among them) have no system role and reject two turns
    in a row from the same side, so the instructions open the first user turn and
    neighbouring turns are merged.
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
    if extra:
        turns.append(("user", extra))
    if turns[-1][0] != "user":
        turns.append(("user", "(Continue.)"))
    merged: list[Schema] = []
    for role, text in turns:
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] += "\n\n" + text
        else:
            merged.append({"role": role, "content": text})
    return merged


def parse_decision(raw: str, request: ModelRequest, usage: Usage) -> Decision:
    """The decision in the model's JSON output, with fresh call ids.

    Raises:
        MalformedModelOutput: The output is not a decision for this goal.
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
    if kind == "ask" and isinstance(obj.get("text"), str) and obj["text"].strip():
        return AskUser(text=obj["text"].strip())
    if kind == "finish" and isinstance(obj.get("answer"), str) and obj["answer"].strip():
        return Finish(answer=obj["answer"].strip())
    if kind == "call_tools" and isinstance(obj.get("calls"), list) and obj["calls"]:
        seen = sum(isinstance(m, ToolCallMessage) for m in request.messages)
        calls: list[ToolCall] = []
        for i, item in enumerate(cast(list[Any], obj["calls"])):
            entry = cast(Schema, item) if isinstance(item, dict) else {}
            tool, args = entry.get("tool"), entry.get("args", {})
            if not isinstance(tool, str) or request.goal.tool(tool) is None:
                raise MalformedModelOutput(f"unknown tool in output: {tool!r}", usage)
            if not isinstance(args, dict):
                raise MalformedModelOutput(f"arguments of `{tool}` are not an object", usage)
            calls.append(
                ToolCall(call_id=f"gguf-{seen + i + 1}", tool=tool, args=cast(Schema, args))
            )
        return CallTools(calls=calls)
    raise MalformedModelOutput(f"output is not a valid decision: {raw[:200]!r}", usage)


class GgufModel:
    """A local GGUF model file, run in-process with llama-cpp-python.

    Args:
        path: The `.gguf` file.
        n_ctx: Context window in tokens.
        max_tokens: Longest output of one decision.
        llama: An already loaded `llama_cpp.Llama` (tests, custom loading).

    Raises:
        UserError: llama-cpp-python is not installed (`pip install 'onward[local]'`).
    """

    def __init__(
        self, path: str, *, n_ctx: int = 8192, max_tokens: int = 1024, llama: Any = None
    ) -> None:
        if llama is None and importlib.util.find_spec("llama_cpp") is None:
            raise UserError(
                "`gguf:` models need llama-cpp-python: install onward[local] "
                "(`pip install 'onward[local]'`) or choose another ONWARD_MODEL"
            )
        self._path = Path(path).expanduser()
        self._n_ctx = n_ctx
        self._max_tokens = max_tokens
        self._llama: Any = llama
        # llama.cpp contexts are not thread-safe: one generation at a time.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"gguf:{self._path.name}"

    @property
    def offline(self) -> bool:
        return False

    def _model(self) -> Any:
        if self._llama is None:
            if not self._path.is_file():
                raise ModelPermanentError(f"GGUF model file {str(self._path)!r} does not exist")
            llama_cpp: Any = importlib.import_module("llama_cpp")
            self._llama = llama_cpp.Llama(
                model_path=str(self._path), n_ctx=self._n_ctx, verbose=False
            )
        return self._llama

    def _grammar(self, schema: Schema) -> Any:
        """A llama.cpp grammar that only accepts JSON matching `schema`."""
        grammar_cls: Any = importlib.import_module("llama_cpp").LlamaGrammar
        return grammar_cls.from_json_schema(json.dumps(schema), verbose=False)

    def _complete(
        self, messages: list[Schema], schema: Schema, max_tokens: int
    ) -> tuple[str, Usage]:
        with self._lock:
            llama = self._model()
            result: Any = llama.create_chat_completion(
                messages=messages,
                grammar=self._grammar(schema),
                temperature=0.2,
                max_tokens=max_tokens,
            )
        content = str(result["choices"][0]["message"].get("content") or "")
        counts: Any = result.get("usage") or {}
        usage = Usage(
            requests=1,
            input_tokens=int(counts.get("prompt_tokens", 0)),
            output_tokens=int(counts.get("completion_tokens", 0)),
            cost_usd=0.0,  # runs locally: a known price of zero
        )
        return content, usage

    async def decide(
        self, request: ModelRequest, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        """One grammar-constrained generation (in a thread: llama.cpp blocks).

        A review request generates nothing and approves (see the module docstring).
        """
        if request.review:
            return ModelResponse(
                decision=Review(approved=True), usage=Usage(), model_name=self.name
            )
        extra = None
        if request.repair_hint:
            extra = f"Your previous output was invalid: {request.repair_hint}. Answer again."
        messages = chat_messages(_instructions(request.goal), request.messages, extra)
        raw, usage = await asyncio.to_thread(
            self._complete, messages, decision_schema(request.goal), self._max_tokens
        )
        decision = parse_decision(raw, request, usage)
        visible = decision.text if isinstance(decision, AskUser) else None
        visible = decision.answer if isinstance(decision, Finish) else visible
        if visible and on_delta is not None:
            for i, word in enumerate(visible.split(" ")):
                await on_delta(word if i == 0 else " " + word)
        return ModelResponse(decision=decision, usage=usage, model_name=self.name)

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        """A small constrained verdict; an unusable one lets the message through."""
        last = next(
            (m.text for m in reversed(request.messages) if isinstance(m, AssistantMessage)), ""
        )
        system = (
            f"Does the user's message fit this assistant's purpose: {request.goal.description}? "
            "Greetings, thanks and answers to the assistant's own question always fit. "
            'Answer {"allowed": true, "reply": ""} or {"allowed": false, "reply": "<one '
            'polite sentence saying what you can help with>"}.'
        )
        prompt = f"Assistant's last message: {last!r}\nUser's message: {request.text!r}"
        messages = chat_messages(system, [], prompt)
        raw, usage = await asyncio.to_thread(self._complete, messages, GUARDRAIL_SCHEMA, 200)
        try:
            data: Any = json.loads(raw)
            allowed = bool(data["allowed"])
            reply = str(data.get("reply") or "").strip() or None
        except (ValueError, KeyError, TypeError, AttributeError):
            return GuardrailResponse(verdict=GuardrailVerdict(allowed=True), usage=usage)
        verdict = GuardrailVerdict(allowed=allowed, reply=None if allowed else reply)
        return GuardrailResponse(verdict=verdict, usage=usage)
