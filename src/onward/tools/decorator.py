"""`@tool`: a typed function becomes a tool with a JSON schema and run options."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from onward.agent.specs import ApprovalPolicy, RetrySpec, ToolSpec
from onward.exceptions import ToolArgumentsError, UserError
from onward.tools.context import ToolContext


@dataclass
class Tool:
    """A tool: the function, its argument model and its options. Goals list tools;
    the goal catalog finds them by name."""

    name: str
    description: str
    function: Callable[..., Any]
    args_model: type[BaseModel]
    approval: ApprovalPolicy = "auto"
    timeout_s: float = 30.0
    retry: RetrySpec = field(default_factory=RetrySpec)
    compensation: str | None = None
    task_queue: str | None = None
    local: bool = False
    wants_context: bool = False
    follow_ups: tuple[str, ...] = ()
    model_visible: bool = True

    def spec(self) -> ToolSpec:
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=self.args_model.model_json_schema(),
            approval=self.approval,
            timeout_s=self.timeout_s,
            retry=self.retry,
            compensation=self.compensation,
            task_queue=self.task_queue,
            local=self.local,
            follow_ups=list(self.follow_ups),
            model_visible=self.model_visible,
        )

    def validate(self, args: dict[str, Any]) -> BaseModel:
        try:
            return self.args_model.model_validate(args)
        except ValidationError as exc:
            raise ToolArgumentsError(_short_errors(exc)) from exc

    async def invoke(self, args: dict[str, Any], ctx: ToolContext | None = None) -> Any:
        """Validate `args` and run the function (sync ones in a thread)."""
        model = self.validate(args)
        kwargs = {name: getattr(model, name) for name in type(model).model_fields}
        if self.wants_context:
            kwargs["ctx"] = ctx
        if inspect.iscoroutinefunction(self.function):
            return await self.function(**kwargs)
        return await asyncio.to_thread(self.function, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Calling the decorated function directly still works, e.g. in unit tests.
        return self.function(*args, **kwargs)


def _short_errors(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
        for err in exc.errors()
    ]
    return "; ".join(parts)


def _args_model(fn: Callable[..., Any], name: str) -> tuple[type[BaseModel], bool]:
    sig = inspect.signature(fn)
    hints = inspect.get_annotations(fn, eval_str=True)
    fields: dict[str, Any] = {}
    wants_context = False
    for param in sig.parameters.values():
        if param.name == "ctx" or hints.get(param.name) is ToolContext:
            wants_context = True
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise UserError(f"tool `{name}`: *args/**kwargs are not supported; name each argument")
        if param.name not in hints:
            raise UserError(f"tool `{name}`: argument `{param.name}` needs a type annotation")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (hints[param.name], default)
    model = create_model(  # type: ignore[call-overload]
        f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model, wants_context


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    approval: ApprovalPolicy = "auto",
    timeout_s: float = 30.0,
    retry: RetrySpec | None = None,
    compensation: str | None = None,
    task_queue: str | None = None,
    local: bool = False,
    follow_ups: tuple[str, ...] | list[str] = (),
    model_visible: bool = True,
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    approval: ApprovalPolicy = "auto",
    timeout_s: float = 30.0,
    retry: RetrySpec | None = None,
    compensation: str | None = None,
    task_queue: str | None = None,
    local: bool = False,
    follow_ups: tuple[str, ...] | list[str] = (),
    model_visible: bool = True,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function (sync or async) into a tool.

    The docstring is the description the model sees; the signature gives the JSON
    schema. A parameter named `ctx` (or typed `ToolContext`) receives the call's
    context, including its idempotency key, and is hidden from the model.

    Args:
        name: Tool name; defaults to the function name.
        approval: `auto` runs at once, `confirm` waits for a human decision, `deny`
            never runs (the model is told).
        timeout_s: Start-to-close timeout of one attempt.
        retry: Retry policy; defaults to 3 attempts with backoff.
        compensation: Name of the tool that undoes this one (saga step).
        task_queue: Run on workers of this queue instead of the default one.
        local: Run as a local activity (short, cheap tools).
        follow_ups: Names of tools that usually come next with this one's result
            (shown to every model; not enforced).
        model_visible: False for a tool only the workflow runs, such as a saga's
            compensation: no model is offered it or may call it.
    """

    def wrap(func: Callable[..., Any]) -> Tool:
        tool_name = name or func.__name__
        doc = inspect.getdoc(func)
        if not doc:
            raise UserError(f"tool `{tool_name}` needs a docstring: it is what the model reads")
        args_model, wants_context = _args_model(func, tool_name)
        t = Tool(
            name=tool_name,
            description=doc,
            function=func,
            args_model=args_model,
            approval=approval,
            timeout_s=timeout_s,
            retry=retry or RetrySpec(),
            compensation=compensation,
            task_queue=task_queue,
            local=local,
            wants_context=wants_context,
            follow_ups=tuple(follow_ups),
            model_visible=model_visible,
        )
        return t

    if fn is not None:
        return wrap(fn)
    return wrap
