"""A real MCP server over Streamable HTTP on 127.0.0.1, built with the `mcp` SDK.

It records every tool call it executes and every request's headers, so tests can
assert on the server side what reached it (and what never did).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import uvicorn
from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

# A 1x1 PNG: what a chart or screenshot tool would return, small enough to compare.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
READ_ONLY = ToolAnnotations(read_only_hint=True)
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Call:
    tool: str
    args: dict[str, Any]


class McpTestServer:
    """`with McpTestServer() as srv:` serves at `srv.url` until the block ends.

    Tools: `add` and `slow_square` (read-only), `append_note` and `record_sale`
    (not marked read-only, so they default to `confirm`), `chart` (an image),
    `fail` (raises). `slow_square` and `record_sale` block until `release` is set.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.headers: list[dict[str, str]] = []
        self.started = threading.Event()
        """Set when a blocking tool has started running."""
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.mcp = self._build()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def count(self, tool: str) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.tool == tool)

    def _record(self, tool: str, **args: Any) -> None:
        with self._lock:
            self.calls.append(Call(tool, args))

    async def _blocked(self) -> None:
        self.started.set()
        released = await asyncio.to_thread(self.release.wait, 60)
        assert released, "the test never released the blocking tool"

    def _build(self) -> MCPServer:
        mcp = MCPServer("onward-test")

        @mcp.tool(annotations=READ_ONLY)
        def add(a: int, b: int) -> int:
            """Add two integers."""
            self._record("add", a=a, b=b)
            return a + b

        @mcp.tool(annotations=READ_ONLY)
        async def slow_square(x: int) -> int:
            """Square a number, slowly."""
            self._record("slow_square", x=x)
            await self._blocked()
            return x * x

        @mcp.tool()
        def append_note(text: str) -> str:
            """Append a note to the shared notebook."""
            self._record("append_note", text=text)
            return f"noted: {text}"

        @mcp.tool()
        async def record_sale(item: str, amount: int) -> str:
            """Record a sale in the books (not idempotent)."""
            self._record("record_sale", item=item, amount=amount)
            await self._blocked()
            return f"sold {item} for {amount}"

        @mcp.tool(annotations=READ_ONLY)
        def chart(title: str) -> Image:
            """Draw a chart of the week."""
            self._record("chart", title=title)
            return Image(data=PNG, format="png")

        @mcp.tool(annotations=READ_ONLY)
        def fail(reason: str) -> str:
            """Always fails."""
            self._record("fail", reason=reason)
            raise ToolError(f"cannot do that: {reason}")

        return mcp

    def _app(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        inner = self.mcp.streamable_http_app()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                raw: list[tuple[bytes, bytes]] = scope["headers"]
                with self._lock:
                    self.headers.append({k.decode(): v.decode() for k, v in raw})
            await inner(scope, receive, send)

        return app

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        # Listening before the thread starts: clients can connect at once.
        sock.listen(128)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        loop = asyncio.new_event_loop()

        def serve() -> None:
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            finally:
                loop.close()
                sock.close()

        self._thread = threading.Thread(target=serve, name="mcp-test-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self.release.set()
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
