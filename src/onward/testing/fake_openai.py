"""`FakeOpenAIServer`: a real OpenAI-compatible HTTP server on 127.0.0.1, for tests.

It speaks `POST /v1/chat/completions` (plain JSON and SSE streaming, including streamed
tool calls and the final usage chunk), so the real provider client, its HTTP stack and
onward's error mapping are exercised end to end. Each request takes the next scripted
response; failures, added latency and hangs are scripted the same way. This module
holds the scripted responses and the server; their wire format is `_fake_openai_wire`.

Example:
    ```python
    with FakeOpenAIServer() as srv:
        srv.enqueue(FakeFailure(429, retry_after=3), FakeReply(text="Hello!"))
        settings = Settings(model="openai:gpt-4o-mini", openai_base_url=srv.base_url)
        ...
        assert srv.total_requests == 2
    ```
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, cast

import uvicorn

from onward.testing._fake_openai_wire import (
    Send,
    completion,
    error_body,
    send_failure,
    send_json,
    send_stream,
)

Json = dict[str, Any]
_Scope = Mapping[str, Any]
_Receive = Callable[[], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class FakeToolCall:
    """One tool call in a scripted reply; `arguments` may be invalid JSON on purpose."""

    name: str
    arguments: str | Mapping[str, Any] = field(default_factory=dict[str, Any])
    id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments))


@dataclass(frozen=True)
class FakeReply:
    """A successful completion: text, tool calls or both.

    `finish_reason` defaults to `tool_calls` when there are calls, else `stop`; set it
    to `content_filter` to simulate a refusal. `chunk_chars` is the size of streamed
    text and argument fragments.
    """

    text: str | None = None
    tool_calls: Sequence[FakeToolCall] = ()
    prompt_tokens: int = 12
    completion_tokens: int = 7
    cached_tokens: int = 0
    finish_reason: str | None = None
    delay_s: float = 0.0
    chunk_chars: int = 4


@dataclass(frozen=True)
class FakeFailure:
    """An HTTP error response, e.g. `FakeFailure(429, retry_after=3)`."""

    status: int = 500
    retry_after: float | str | None = None
    body: Mapping[str, Any] | str | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class FakeHang:
    """Never answer: the request stays open until the client gives up, `release_hung()`
    is called or the server stops (then it gets a 503)."""


FakeResponse = FakeReply | FakeFailure | FakeHang
Responder = Callable[[Json], FakeResponse]


class FakeOpenAIServer:
    """A scriptable OpenAI-compatible server running in a background thread.

    Responses come from, in order: the queue filled by `enqueue`, then `responder`
    (a function of the request body), then `default`. Use it as a context manager,
    sync or async; `base_url` ends in `/v1` like the real API's.

    Attributes:
        requests: Every received request body, in arrival order.
        total_requests: Number of requests received.
        in_flight: Requests currently being answered.
        max_in_flight: Highest `in_flight` seen so far.
        latency_s: Extra delay added to every request.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        default: FakeResponse | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.responder = responder
        self.default: FakeResponse = default or FakeReply(text="ok")
        self.latency_s = latency_s
        self.requests: list[Json] = []
        self.total_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: deque[FakeResponse] = deque()
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._stopping = False

    # ------------------------------------------------------------------ control

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. `http://127.0.0.1:54321/v1`."""
        if not self._port:
            raise RuntimeError("FakeOpenAIServer is not running; use `with FakeOpenAIServer()`")
        return f"http://127.0.0.1:{self._port}/v1"

    def enqueue(self, *responses: FakeResponse) -> None:
        """Answer the next requests with `responses`, one each, in order."""
        with self._cond:
            self._queue.extend(responses)

    def release_hung(self) -> None:
        """Let the requests hanging now end (with a 503); later hangs hang again."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._release_now)

    def _release_now(self) -> None:
        released, self._release = self._release, asyncio.Event()
        released.set()

    def wait_for(self, predicate: Callable[[FakeOpenAIServer], bool], timeout: float = 10) -> None:
        """Block until `predicate(self)` holds, e.g. `lambda s: s.in_flight == 2`.

        Raises:
            TimeoutError: The condition did not hold within `timeout` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout=timeout):
                raise TimeoutError(f"FakeOpenAIServer: condition not met within {timeout}s")

    async def wait_for_async(
        self, predicate: Callable[[FakeOpenAIServer], bool], deadline_s: float = 10
    ) -> None:
        """`wait_for` without blocking the event loop."""
        await asyncio.to_thread(self.wait_for, predicate, deadline_s)

    def start(self) -> None:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        # Listening before the thread starts means clients can connect at once: the
        # kernel queues them until uvicorn accepts, so no readiness polling is needed.
        sock.listen(128)
        self._port = sock.getsockname()[1]
        self._release = asyncio.Event()
        self._stopping = False
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = self._server

        def serve() -> None:
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            finally:
                loop.close()
                sock.close()

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Release hung requests, stop serving and join the thread."""
        if self._server is None or self._thread is None:
            return
        self._stopping = True
        self.release_hung()
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

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # ------------------------------------------------------------------ serving

    def _next_response(self, body: Json) -> FakeResponse:
        with self._cond:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(body)
        return self.default

    def _enter(self, body: Json) -> None:
        with self._cond:
            self.requests.append(body)
            self.total_requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._cond.notify_all()

    def _leave(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    async def _app(self, scope: _Scope, receive: _Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST" or not str(scope["path"]).endswith("/chat/completions"):
            await send_json(send, 404, {"error": {"message": f"no route {scope['path']}"}})
            return
        try:
            body: Json = json.loads(raw or b"{}")
        except ValueError:
            await send_json(send, 400, {"error": {"message": "body is not JSON"}})
            return
        self._enter(body)
        try:
            await self._answer(body, send)
        finally:
            self._leave()

    async def _answer(self, body: Json, send: Send) -> None:
        response = self._next_response(body)
        delay = self.latency_s + (0.0 if isinstance(response, FakeHang) else response.delay_s)
        if delay:
            await asyncio.sleep(delay)
        if isinstance(response, FakeHang):
            if not self._stopping:
                await self._release.wait()  # the event current when this request arrived
            await send_json(send, 503, error_body("released from hang", "server_error"))
            return
        if isinstance(response, FakeFailure):
            await send_failure(send, response)
            return
        model = str(body.get("model", "fake-model"))
        if body.get("stream"):
            options: object = body.get("stream_options")
            include_usage = isinstance(options, dict) and bool(
                cast(dict[str, object], options).get("include_usage")
            )
            await send_stream(send, response, model, include_usage)
        else:
            await send_json(send, 200, completion(response, model))
