"""MCP servers as a goal's tool source, next to its `@tool` functions.

```python
from onward import Goal
from onward.tools.mcp import McpServer, Secret

Goal(name="ops", description="…", instructions="…", mcp=[
    McpServer.stdio("time", "mcp-server-time"),
    McpServer.http("tickets", "https://mcp.example.com/mcp",
                   headers={"Authorization": Secret("tickets", "Bearer {}")},
                   tools=["search_*", "create_ticket"], approval={"create_ticket": "confirm"}),
])
```

The server's tools are listed by an activity at the start of each conversation run and
join the goal's tools: the model sees them like Python tools, and the same policy
applies (allow-list, argument schema, approval). A tool not known to be read-only
(MCP `readOnlyHint`) needs a human's yes unless `approval` says otherwise.

Credentials never go into a goal: a `Secret` names an entry of `ONWARD_MCP_SECRETS`,
which only the worker's MCP activities read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import get_args
from urllib.parse import urlsplit

from onward.agent.specs import (
    ApprovalPolicy,
    McpHttp,
    McpServerSpec,
    McpStdio,
    RetrySpec,
    SecretOrText,
    SecretRef,
)
from onward.exceptions import UserError

_SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{0,24}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Header and variable names that carry credentials: a literal value there would be
# recorded in every conversation's history.
_CREDENTIAL_HEADER = re.compile(r"auth|token|secret|passw|api[-_]?key|cookie", re.IGNORECASE)
_CREDENTIAL_ENV = re.compile(
    r"TOKEN|SECRET|PASSW|API_?KEY|CREDENTIAL|PRIVATE_KEY|ACCESS_KEY", re.IGNORECASE
)
_POLICIES = set(get_args(ApprovalPolicy))


@dataclass(frozen=True)
class Secret:
    """A value the worker reads from `ONWARD_MCP_SECRETS[name]` when it connects.

    Args:
        name: Key in the `ONWARD_MCP_SECRETS` JSON object.
        template: How the value is written, with `{}` for the secret
            (e.g. `"Bearer {}"` for an Authorization header).
    """

    name: str
    template: str = "{}"

    def ref(self, where: str) -> SecretRef:
        if not _SECRET_NAME.match(self.name):
            raise UserError(f"{where}: secret name {self.name!r} must match {_SECRET_NAME.pattern}")
        if self.template.count("{}") != 1:
            raise UserError(f"{where}: secret template {self.template!r} needs exactly one `{{}}`")
        return SecretRef(secret=self.name, template=self.template)


Value = str | Secret


@dataclass(frozen=True)
class McpServer:
    """One MCP server of a goal. Build it with `McpServer.stdio` or `McpServer.http`."""

    server: McpServerSpec

    @property
    def name(self) -> str:
        return self.server.name

    def spec(self) -> McpServerSpec:
        return self.server

    @classmethod
    def stdio(
        cls,
        name: str,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, Value] | None = None,
        cwd: str | None = None,
        tools: Sequence[str] | None = None,
        approval: Mapping[str, ApprovalPolicy] | None = None,
        prefix: str = "",
        stateful: bool = False,
        timeout_s: float = 60.0,
        heartbeat_s: float = 10.0,
        list_timeout_s: float = 30.0,
        retry: RetrySpec | None = None,
        task_queue: str | None = None,
    ) -> McpServer:
        """A server the worker runs as a subprocess and talks to over stdin/stdout.

        Args:
            name: Short name (`[a-z0-9_-]`); tools show it as their origin `mcp:<name>`.
            command: Executable; a bare name is looked up on PATH, then next to the
                worker's Python (its virtualenv's `bin/`).
            args: Command-line arguments.
            env: Extra environment (the child gets only a minimal one otherwise);
                credentials must be `Secret`s.
            cwd: Working directory of the child.
            tools: Allow-list of tool names or `fnmatch` patterns; None = all.
            approval: Tool name or pattern -> `auto` / `confirm` / `deny`. Exact names
                win, then the first matching pattern; tools matching none are `auto`
                when the server marks them read-only and `confirm` otherwise.
            prefix: Prepended to the server's tool names (to avoid clashes).
            stateful: Keep one session per conversation open on each worker (for
                servers that remember things between calls) instead of one per call.
            timeout_s: Start-to-close timeout of one call.
            heartbeat_s: A call on a worker that went silent this long is given up.
            list_timeout_s: Longest wait for the server to start and list its tools.
            retry: Retry policy for tools marked read-only or idempotent; any other
                tool gets one attempt (MCP has no idempotency key).
            task_queue: Run this server's calls on workers of this queue.
        """
        where = f"MCP server `{name}`"
        if not command.strip():
            raise UserError(f"{where}: `command` is empty")
        transport = McpStdio(
            command=command,
            args=list(args),
            env=_values(env or {}, where, "environment variable", _CREDENTIAL_ENV),
            cwd=cwd,
        )
        return cls(
            _spec(
                name,
                transport,
                tools=tools,
                approval=approval,
                prefix=prefix,
                stateful=stateful,
                timeout_s=timeout_s,
                heartbeat_s=heartbeat_s,
                list_timeout_s=list_timeout_s,
                retry=retry,
                task_queue=task_queue,
            )
        )

    @classmethod
    def http(
        cls,
        name: str,
        url: str,
        *,
        headers: Mapping[str, Value] | None = None,
        tools: Sequence[str] | None = None,
        approval: Mapping[str, ApprovalPolicy] | None = None,
        prefix: str = "",
        stateful: bool = False,
        timeout_s: float = 60.0,
        heartbeat_s: float = 10.0,
        list_timeout_s: float = 30.0,
        retry: RetrySpec | None = None,
        task_queue: str | None = None,
    ) -> McpServer:
        """A server reached over MCP Streamable HTTP at `url`.

        Args:
            name: Short name (`[a-z0-9_-]`); tools show it as their origin `mcp:<name>`.
            url: The server's MCP endpoint (`http(s)://…/mcp`), without credentials.
            headers: Extra request headers; credentials (Authorization, API keys,
                cookies) must be `Secret`s.
            tools: See `McpServer.stdio`; so are the remaining arguments.
            approval: See `McpServer.stdio`.
            prefix: See `McpServer.stdio`.
            stateful: See `McpServer.stdio`.
            timeout_s: See `McpServer.stdio`.
            heartbeat_s: See `McpServer.stdio`.
            list_timeout_s: See `McpServer.stdio`.
            retry: See `McpServer.stdio`.
            task_queue: See `McpServer.stdio`.
        """
        where = f"MCP server `{name}`"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"{where}: url {url!r} must be an http:// or https:// URL")
        if parts.username or parts.password:
            raise UserError(
                f"{where}: the url carries credentials; put them in ONWARD_MCP_SECRETS and "
                'send them as a header, e.g. headers={"Authorization": Secret("name", "Bearer {}")}'
            )
        transport = McpHttp(
            url=url, headers=_values(headers or {}, where, "header", _CREDENTIAL_HEADER)
        )
        return cls(
            _spec(
                name,
                transport,
                tools=tools,
                approval=approval,
                prefix=prefix,
                stateful=stateful,
                timeout_s=timeout_s,
                heartbeat_s=heartbeat_s,
                list_timeout_s=list_timeout_s,
                retry=retry,
                task_queue=task_queue,
            )
        )


def _values(
    values: Mapping[str, Value], where: str, kind: str, credential: re.Pattern[str]
) -> dict[str, SecretOrText]:
    out: dict[str, SecretOrText] = {}
    for key, value in values.items():
        if isinstance(value, Secret):
            out[key] = value.ref(f"{where}, {kind} `{key}`")
        elif credential.search(key):
            raise UserError(
                f"{where}: {kind} `{key}` looks like a credential, and a literal value "
                "would be recorded in every conversation's history; put it in "
                f'ONWARD_MCP_SECRETS and write Secret("<name>") instead'
            )
        else:
            out[key] = value
    return out


def _spec(
    name: str,
    transport: McpStdio | McpHttp,
    *,
    tools: Sequence[str] | None,
    approval: Mapping[str, ApprovalPolicy] | None,
    prefix: str,
    stateful: bool,
    timeout_s: float,
    heartbeat_s: float,
    list_timeout_s: float,
    retry: RetrySpec | None,
    task_queue: str | None,
) -> McpServerSpec:
    where = f"MCP server `{name}`"
    if not _SERVER_NAME.match(name):
        raise UserError(f"{where}: the name must match {_SERVER_NAME.pattern}")
    if not _PREFIX.match(prefix):
        raise UserError(f"{where}: prefix {prefix!r} must match {_PREFIX.pattern}")
    if tools is not None and isinstance(tools, str):
        raise UserError(f"{where}: `tools` is a list of names or patterns, not one string")
    for key, policy in (approval or {}).items():
        if policy not in _POLICIES:
            raise UserError(
                f"{where}: approval for `{key}` is {policy!r}; use one of {sorted(_POLICIES)}"
            )
    for label, value in (
        ("timeout_s", timeout_s),
        ("heartbeat_s", heartbeat_s),
        ("list_timeout_s", list_timeout_s),
    ):
        if value <= 0:
            raise UserError(f"{where}: `{label}` must be positive, not {value}")
    return McpServerSpec(
        name=name,
        transport=transport,
        tools=list(tools) if tools is not None else None,
        approval=dict(approval or {}),
        prefix=prefix,
        stateful=stateful,
        timeout_s=timeout_s,
        heartbeat_s=heartbeat_s,
        list_timeout_s=list_timeout_s,
        retry=retry or RetrySpec(),
        task_queue=task_queue,
    )
