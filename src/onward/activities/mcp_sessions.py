"""Connections to MCP servers for the MCP activities: one per call, or pooled.

A stateless server gets a fresh connection for each activity, closed when it ends.
A stateful one keeps a connection per conversation open on this worker (the server
may remember things between that conversation's calls); a connection found dead is
opened again before a call is sent, never after, so no call is replayed blindly.

Each connection lives in a task of its own: the SDK's transports are anyio task
groups, which must be entered and left by the same task, while activities come and
go. Secrets are resolved here, from settings, at connect time.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import sys
import time
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, cast

import httpx2
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation

from onward.agent.specs import McpHttp, McpServerSpec, McpStdio, SecretOrText, SecretRef
from onward.config import Settings
from onward.exceptions import McpConfigError, McpUnavailable

CLIENT_INFO = Implementation(name="onward", version="0.1.0")
_CLOSE_TIMEOUT_S = 5.0
_STDERR_TAIL_CHARS = 600


def leaf_error(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups: anyio wraps them."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    inner: list[BaseException] = list(exc.exceptions)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    real = [e for e in inner if not isinstance(e, asyncio.CancelledError)]
    if not inner:
        return cast(BaseException, exc)
    return leaf_error((real or inner)[0])


def describe(exc: BaseException) -> str:
    """A one-line reason a person can act on."""
    exc = leaf_error(exc)
    if isinstance(exc, MCPError):
        return exc.message
    if isinstance(exc, httpx2.ConnectError):
        return f"cannot connect ({exc or 'connection refused'})"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url}"
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _secret(ref: SecretRef, settings: Settings, where: str) -> str:
    value = settings.mcp_secrets.get(ref.secret)
    if value is None:
        raise McpConfigError(
            f"{where} needs the secret `{ref.secret}`, which this worker does not have; "
            f'set ONWARD_MCP_SECRETS=\'{{"{ref.secret}": "…"}}\' for the worker'
        )
    return ref.template.replace("{}", value.get_secret_value(), 1)


def _resolve(values: dict[str, SecretOrText], settings: Settings, where: str) -> dict[str, str]:
    return {
        k: _secret(v, settings, f"{where} ({k})") if isinstance(v, SecretRef) else v
        for k, v in values.items()
    }


def resolve_command(command: str, where: str) -> str:
    """`command` on PATH, else in this Python's own `bin/` (a virtualenv not on PATH)."""
    found = shutil.which(command) or shutil.which(command, path=str(Path(sys.executable).parent))
    if found is None:
        raise McpConfigError(
            f"{where}: the command `{command}` was not found on PATH or in "
            f"{Path(sys.executable).parent} (is the server installed on this worker?)"
        )
    return found


_tls_context: ssl.SSLContext | None = None


async def _tls() -> ssl.SSLContext:
    """One verifying TLS context for every HTTP server: loading the system trust
    store takes a while, so it is built once, in a thread, off the event loop."""
    global _tls_context
    if _tls_context is None:
        _tls_context = await asyncio.to_thread(httpx2.create_ssl_context)
    return _tls_context


def _log_path(settings: Settings, server: McpServerSpec) -> Path:
    return settings.data_dir / "logs" / f"mcp-{server.name}.log"


@asynccontextmanager
async def open_client(
    server: McpServerSpec, settings: Settings, errlog: TextIO | None = None
) -> AsyncGenerator[Client]:
    """An initialised MCP client for `server` (subprocess or HTTP), closed on exit."""
    where = f"MCP server `{server.name}`"
    async with AsyncExitStack() as stack:
        transport = server.transport
        if isinstance(transport, McpStdio):
            params = StdioServerParameters(
                command=resolve_command(transport.command, where),
                args=transport.args,
                env=_resolve(transport.env, settings, where) or None,
                cwd=transport.cwd,
            )
            client = Client(
                stdio_client(params, errlog=errlog or sys.stderr),
                client_info=CLIENT_INFO,
                read_timeout_seconds=server.timeout_s,
                cache=None,
            )
        else:
            assert isinstance(transport, McpHttp)
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    verify=await _tls(),
                    headers=_resolve(transport.headers, settings, where),
                    timeout=httpx2.Timeout(30.0, read=server.timeout_s + 5.0),
                    follow_redirects=True,
                )
            )
            client = Client(
                streamable_http_client(transport.url, http_client=http),
                client_info=CLIENT_INFO,
                read_timeout_seconds=server.timeout_s,
                cache=None,
            )
        yield await stack.enter_async_context(client)


class Connection:
    """One open client, owned by its own task until `close()`."""

    def __init__(self, server: McpServerSpec, settings: Settings) -> None:
        self.server = server
        self._settings = settings
        self._ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self.used_at = time.monotonic()
        self.in_use = 0
        self._log = _log_path(settings, server)
        self._log_offset = 0
        self._owner = asyncio.create_task(self._own(), name=f"mcp-{server.name}")

    async def _own(self) -> None:
        errlog: TextIO | None = None
        try:
            if isinstance(self.server.transport, McpStdio):
                self._log.parent.mkdir(parents=True, exist_ok=True)
                errlog = self._log.open("a", encoding="utf-8", errors="replace")
                self._log_offset = errlog.tell()
            async with open_client(self.server, self._settings, errlog) as client:
                self._ready.set_result(client)
                await self._stop.wait()
        except BaseException as exc:  # an owner task never leaks an exception
            if not self._ready.done():
                self._ready.set_exception(
                    exc if isinstance(exc, Exception) else McpUnavailable(describe(exc))
                )
            if not isinstance(exc, Exception):
                raise
        finally:
            if errlog is not None:
                errlog.close()

    @property
    def alive(self) -> bool:
        return not self._owner.done()

    async def client(self, timeout_s: float) -> Client:
        """The connected client; McpConfigError/McpUnavailable when it cannot be had."""
        where = f"MCP server `{self.server.name}`"
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), timeout_s)
        except McpConfigError:
            raise
        except TimeoutError as exc:
            await self.close()
            raise McpUnavailable(f"{where} did not start within {timeout_s:g} s") from exc
        except Exception as exc:
            await self.close()
            raise McpUnavailable(
                f"{where} is unavailable: {describe(exc)}{self._stderr()}"
            ) from exc

    def _stderr(self) -> str:
        """What a subprocess said on stderr before it failed, for the error message."""
        if not isinstance(self.server.transport, McpStdio) or not self._log.exists():
            return ""
        with self._log.open(encoding="utf-8", errors="replace") as f:
            f.seek(self._log_offset)
            text = f.read().strip()
        return f" (its stderr: {text[-_STDERR_TAIL_CHARS:]})" if text else ""

    async def close(self) -> None:
        self._stop.set()
        if self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # seen: not "never retrieved" at garbage collection
        try:
            await asyncio.wait_for(asyncio.shield(self._owner), _CLOSE_TIMEOUT_S)
        except TimeoutError:
            self._owner.cancel()
            with contextlib.suppress(BaseException):
                await self._owner
        except BaseException:
            # Its failure was reported through `client()`, or nobody asked.
            pass


@dataclass
class SessionPool:
    """This worker's connections to stateful servers, one per conversation and server.

    Idle connections are closed after `idle_s`; at most `max_open` idle ones are
    kept. A connection in use by a call is never closed by the pool.
    """

    settings: Settings
    idle_s: float = 300.0
    max_open: int = 32
    _open: dict[tuple[str, str], Connection] = field(
        default_factory=dict[tuple[str, str], Connection]
    )
    # Parallel calls of one conversation share one connection instead of opening two.
    _locks: dict[tuple[str, str], asyncio.Lock] = field(
        default_factory=dict[tuple[str, str], asyncio.Lock]
    )

    @asynccontextmanager
    async def client(self, server: McpServerSpec, conversation_id: str) -> AsyncGenerator[Client]:
        """A live client for this call: fresh for stateless servers, pooled otherwise.

        A pooled connection is probed with a tool listing (read-only) first; a dead
        one is replaced before the call is sent.
        """
        if not server.stateful:
            fresh = Connection(server, self.settings)
            try:
                yield await fresh.client(server.list_timeout_s)
            finally:
                await fresh.close()
            return
        await self._sweep()
        key = (conversation_id, server.model_dump_json())
        async with self._locks.setdefault(key, asyncio.Lock()):
            conn = self._open.get(key)
            if conn is not None and not await _answers(conn, server):
                await self._drop(key)
                conn = None
            if conn is None:
                conn = Connection(server, self.settings)
                self._open[key] = conn
            try:
                client = await conn.client(server.list_timeout_s)
            except Exception:
                self._open.pop(key, None)
                raise
            conn.in_use += 1
        try:
            yield client
        finally:
            conn.in_use -= 1
            conn.used_at = time.monotonic()

    async def _drop(self, key: tuple[str, str]) -> None:
        conn = self._open.pop(key, None)
        if conn is not None:
            await conn.close()

    async def _sweep(self) -> None:
        now = time.monotonic()
        idle = sorted(
            (k for k, c in self._open.items() if c.in_use == 0), key=lambda k: self._open[k].used_at
        )
        stale = [k for k in self._open if not self._open[k].alive]
        stale += [k for k in idle if now - self._open[k].used_at > self.idle_s]
        # Room for one more: the least recently used idle ones go first.
        kept = [k for k in idle if k not in stale]
        stale += kept[: max(0, len(self._open) - len(stale) - self.max_open + 1)]
        for key in stale:
            await self._drop(key)
        for key in [
            k for k, lock in self._locks.items() if k not in self._open and not lock.locked()
        ]:
            del self._locks[key]

    async def aclose(self) -> None:
        for key in list(self._open):
            await self._drop(key)


async def _answers(conn: Connection, server: McpServerSpec) -> bool:
    if not conn.alive:
        return False
    try:
        client = await conn.client(server.list_timeout_s)
        await asyncio.wait_for(client.list_tools(), server.list_timeout_s)
    except Exception:
        return False
    return True
