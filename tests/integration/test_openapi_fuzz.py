"""Schemathesis fuzzes every `/v1` operation of a live API — uvicorn on 127.0.0.1, a
real worker on the dev server — as alice: no 5xx ever, and every response is the one
the OpenAPI document promises (status code, content type, body schema).

The API and its worker run on an event loop of their own in a background thread: the
fuzz tests are synchronous (Hypothesis drives them), so pytest's event loop is idle
while they run. The model asks the user back whatever it is told, so conversations
stay alive. Most generated conversation ids are replaced by real ones (alice's live
or ended conversations, bob's), so the fuzzer also reaches past the 404 for unknown
ids; DELETE gets conversations of its own to delete. Requests for bob's conversation
must get the same answer as for one that never existed.

The events route (SSE) never ends while a conversation lives. Schemathesis reads at
most `max-stream-events` events of a stream, or for at most the request timeout, and
validates the events it read, so its calls end quickly.

The fuzzing runs twice: with the checks listed below and one seed, and with every
check schemathesis has (its defaults, as `st run --checks all`) and a second seed. A
schema-valid request is then one the API must accept: no 422 for a valid body (the
schema names the startable goals, the message rules and a budget raise's "at least
one limit"), though 404/409 remain for ids and states the schema cannot know. Each
positive case gets an `Idempotency-Key` of its own, since the same key with another
body is rightly a 422 (`idempotency_key_reused`), which no schema can express.

Bob's 404 on every route of alice's conversation is covered by tests/api/test_access.py
(which checks the 401s on one route only; the last test here checks them on all).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, CheckContext, HookContext, Response
from schemathesis import checks as core_checks
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi import checks
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from onward.agent.decisions import AskUser
from onward.api.app import create_app
from onward.client.connect import data_converter
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.testing import ScriptedModel
from onward.worker import build_workers, running_workers
from tests.api.conftest import ALICE, BOB, api_settings, serve
from tests.conftest import make_settings
from tests.workflows import toolbox

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
CREATE = "POST /v1/conversations"
MISSING = "conv-000000000000"

# schemathesis's generics, spelled out for pyright.
AnyCase = Case[Any]
Operation = APIOperation[Any, Any, Any, Any]
Check = Callable[[CheckContext, Response, AnyCase], bool | None]
Test = Callable[..., None]

# Every fuzzed response must pass these. Left out, and why:
# - positive_data_acceptance: schema-valid input is rightly refused — an unknown goal
#   (422), a random conversation id (404), a stale approval (409): the schema cannot
#   say which goals, ids or approvals exist.
# - use_after_free, ensure_resource_availability: stateful, they follow links between
#   operations; here each operation is fuzzed on its own.
# - object_level_authorization: needs several identities configured in schemathesis;
#   bob's conversation is in the id pool instead (see the test), and bob's 404 on
#   every route is tests/api/test_access.py's.
# - missing_required_header: no operation declares a required header (the token is a
#   security scheme, which ignored_auth and the last test cover).
# - max_response_time: the API promises no latency.
CHECKS: list[Check] = [
    core_checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,  # schema-violating input gets a 4xx
    checks.ignored_auth,  # a 2xx with alice's token is a 401 without it or with a bad one
    checks.unsupported_method,  # an undocumented method gets a 405 ...
    checks.allow_header_conformance,  # ... whose `Allow` names the documented methods
]


@dataclass(frozen=True)
class LiveApi:
    """A running API and the conversations the fuzzer may address by id."""

    url: str
    live: tuple[str, ...]
    """Alice's conversations, waiting for her."""
    ended: str
    """Alice's ended conversation: still hers, its event stream ends at once."""
    doomed: tuple[str, ...]
    """Alice's conversations for DELETE, so that the others stay addressable."""
    bobs: str
    """Bob's conversation: alice gets 404 for it, whatever she sends."""
    untouched: str
    """Alice's conversation the fuzzer never addresses (the 401 test's target)."""


class IdPool:
    """The real conversation ids path parameters may take, in groups that are drawn
    about equally often (alice's live conversations, where requests can succeed, are
    two of them); empty outside `live_api`."""

    def __init__(self) -> None:
        self.groups: tuple[tuple[str, ...], ...] = ()
        self.for_delete: tuple[tuple[str, ...], ...] = ()

    def fill(self, live: LiveApi) -> None:
        self.groups = (live.live, live.live, (live.ended, live.bobs))
        self.for_delete = (live.doomed, (live.bobs,))

    def clear(self) -> None:
        self.groups = self.for_delete = ()


ID_POOL = IdPool()


class BackgroundApi:
    """The API, on a real uvicorn server, and a worker, on an event loop of their own
    in a background thread."""

    def __init__(self, target_host: str, settings: Settings) -> None:
        self._target_host = target_host
        self._settings = settings
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._live: LiveApi | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzzed-api", daemon=True)

    def start(self) -> LiveApi:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise TimeoutError(f"the API did not start within {START_TIMEOUT_S}s")
        if self._error is not None:
            raise RuntimeError("the API failed to start") from self._error
        assert self._live is not None
        return self._live

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_S)
        assert not self._thread.is_alive(), f"the API did not stop within {STOP_TIMEOUT_S}s"
        if self._error is not None:
            raise RuntimeError("the API failed") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # re-raised on the test's thread by start() / stop()
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        settings = self._settings
        client = await Client.connect(
            self._target_host,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings),
        )
        model = ScriptedModel(lambda request: AskUser(text=f"And then? ({len(request.messages)})"))
        async with running_workers(build_workers(client, settings, model)):
            # Frequent keep-alives: schemathesis checks its read deadline as bytes arrive.
            # Per-user limits off: the fuzzer is one user sending thousands of requests.
            config = api_settings(
                sse_keepalive_s=0.2,
                user_writes_per_minute=0,
                user_max_open_conversations=0,
                user_max_streams=0,
            )
            app = create_app(settings, client=client, api_settings=config)
            async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
                self._live = await _conversations(url, http, Conversations(client, settings))
                self._ready.set()
                await asyncio.to_thread(self._stop.wait)


async def _start(http: httpx.AsyncClient, convs: Conversations, headers: dict[str, str]) -> str:
    created = await http.post(
        "/v1/conversations", json={"goal": toolbox.MATH.name, "message": "hi"}, headers=headers
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert isinstance(cid, str)
    await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
    return cid


async def _conversations(url: str, http: httpx.AsyncClient, convs: Conversations) -> LiveApi:
    live = [await _start(http, convs, ALICE) for _ in range(2)]
    doomed = [await _start(http, convs, ALICE) for _ in range(2)]
    ended = await _start(http, convs, ALICE)
    await convs.end(ended, "ended before the fuzzing")
    async with asyncio.timeout(30):
        await convs.result(ended)  # the workflow has completed: its stream has an end
    return LiveApi(
        url=url,
        live=tuple(live),
        ended=ended,
        doomed=tuple(doomed),
        bobs=await _start(http, convs, BOB),
        untouched=await _start(http, convs, ALICE),
    )


@pytest.fixture(scope="module")
def live_api(dev_env: WorkflowEnvironment, session_data_dir: Path) -> Iterator[LiveApi]:
    target_host = dev_env.client.service_client.config.target_host
    api = BackgroundApi(target_host, make_settings(session_data_dir))
    try:
        live = api.start()
        ID_POOL.fill(live)
        yield live
    finally:
        ID_POOL.clear()
        api.stop()


def _openapi() -> dict[str, Any]:
    """The API's OpenAPI document, from the app factory (no server or Temporal needed).

    Loaded at import because schemathesis's `from_fixture` (lazy loading) does not work
    with pytest 9.2 (it sets `Function._nodeid`, which pytest 9.2 no longer has).
    """
    with tempfile.TemporaryDirectory() as data_dir:
        return create_app(make_settings(Path(data_dir)), api_settings=api_settings()).openapi()


SEEDS = (20240805, 7)
"""The same cases on every run: the listed checks with the first, all with the second."""


def _config(seed: int) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": seed,
            # Alice's token, as a fixed header: generation and ignored_auth know it is
            # not generated data (it is also passed to each call, for the checks).
            "headers": {"Authorization": ALICE["Authorization"]},
            "request-timeout": 10,
            "generation": {
                "mode": "all",  # schema-valid and schema-violating input
                "max-examples": 25,  # per operation, for the fuzzing phase
                "database": "none",
                "no-shrink": True,  # bounded runtime; a failure names its exact request
            },
            "phases": {"stateful": {"enabled": False}},
            "operations": [
                {"include-path-regex": "/events$", "max-stream-events": 3, "request-timeout": 1}
            ],
        }
    )


def _schema(seed: int) -> Any:
    # `[[operations]]` in the config turns `include()` into a union, so exclude instead.
    loaded = schemathesis.openapi.from_dict(_openapi(), config=_config(seed))
    return loaded.exclude(path_regex="^(?!/v1/)")


schema = _schema(SEEDS[0])
schema_all_checks = _schema(SEEDS[1])
_ENDS = ("DELETE", "POST /v1/conversations/{conversation_id}/end")


def flatmap_path_parameters(
    context: HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Mostly address a real conversation instead of the generated id."""
    assert context.operation is not None
    operation = cast(Operation, context.operation)
    # Deleting or ending takes a conversation away: those get conversations of their own.
    ends = operation.method.upper() == "DELETE" or operation.label in _ENDS
    groups = ID_POOL.for_delete if ends else ID_POOL.groups
    if not path_parameters or "conversation_id" not in path_parameters or not groups:
        return st.just(path_parameters)
    generated: dict[str, Any] = path_parameters
    real = [
        st.sampled_from(ids).map(lambda cid: {**generated, "conversation_id": cid})
        for ids in groups
    ]
    return st.one_of(st.just(path_parameters), *real)


def _real_goal(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "goal": toolbox.MATH.name}


def _some_limit(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "max_tokens": body.get("max_tokens") or 1_000_000}


# Schema-valid bodies the API refuses anyway (no such goal; no limit named) are made
# acceptable, so that these operations can succeed: the coverage phase, which these
# hooks do not touch, still sends unknown goals.
COMPLETIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    CREATE: _real_goal,
    "POST /v1/conversations/{conversation_id}/budget": _some_limit,
}


def map_case(context: HookContext, case: AnyCase) -> AnyCase:
    """Complete schema-valid bodies per `COMPLETIONS`."""
    complete = COMPLETIONS.get(case.operation.label)
    if complete is not None and _positive(case) and isinstance(case.body, dict):
        body: dict[str, Any] = case.body
        case.body = complete(body)
    return case


schema.hook(flatmap_path_parameters)
schema.hook(map_case)
# Not `map_case` here: with every check, the schema alone must make a valid request
# one the API accepts (the enum of goals, a budget raise's `minProperties`).
schema_all_checks.hook(flatmap_path_parameters)


def _positive(case: AnyCase) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _own_key(case: AnyCase) -> None:
    """A schema-valid case's `Idempotency-Key`, if it has one, made its own (a key
    reused for another body is a 422 the schema cannot express)."""
    headers = cast(dict[str, str], case.headers)  # case-insensitive
    if _positive(case) and "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"


# One test item per operation. (With pytest 9.2 the items share one node id; their
# names, shown for failures, still carry the operation, e.g. `…[GET /v1/me]`.)
parametrize = cast(Callable[[Test], Test], schema.parametrize())
parametrize_all_checks = cast(Callable[[Test], Test], schema_all_checks.parametrize())


@parametrize
def test_every_v1_operation_answers_as_documented(case: AnyCase, live_api: LiveApi) -> None:
    _own_key(case)
    response = case.call_and_validate(base_url=live_api.url, headers=ALICE, checks=CHECKS)
    _same_as_missing_for_bob(case, response, live_api)


@parametrize_all_checks
def test_every_v1_operation_passes_every_check_with_a_second_seed(
    case: AnyCase, live_api: LiveApi
) -> None:
    _own_key(case)
    # No `checks=`: every check schemathesis has that the config leaves enabled
    # (all of them; `max_response_time` needs a limit, and the API promises none).
    response = case.call_and_validate(base_url=live_api.url, headers=ALICE)
    _same_as_missing_for_bob(case, response, live_api)


def _same_as_missing_for_bob(case: AnyCase, response: Response, live_api: LiveApi) -> None:
    path_parameters = case.path_parameters or {}
    if path_parameters.get("conversation_id") == live_api.bobs:
        # To alice, bob's conversation is a missing one: the same request for an id
        # that never existed gets the same answer (only the id in the reason differs).
        case.path_parameters = {**path_parameters, "conversation_id": MISSING}
        missing = case.call(base_url=live_api.url, headers=ALICE)
        assert response.status_code == missing.status_code, case.operation.label
        assert response.text.replace(live_api.bobs, MISSING) == missing.text


def _operations() -> list[Operation]:
    results = cast(Iterator[Ok[Operation] | Err[InvalidSchema]], schema.get_all_operations())
    return [result.ok() for result in results if isinstance(result, Ok)]


def test_every_v1_operation_refuses_missing_and_unknown_tokens(live_api: LiveApi) -> None:
    operations = _operations()
    assert len(operations) == 14  # fork and stop included
    refused: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWxpY2UtdG9rZW46"},
        {"Authorization": "alice-token"},
    ]
    target = live_api.untouched
    with httpx.Client(base_url=live_api.url, timeout=10) as http:
        for operation in operations:
            method = operation.method.upper()
            path = operation.path.format(conversation_id=target, call_id="c1")
            body: dict[str, str] | None = {} if method == "POST" else None  # valid JSON
            for headers in refused:
                response = http.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (operation.label, headers, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.json()["error"]["code"] == "unauthorized"
        # `?token=` (for EventSource) is accepted on the events route only, and checked.
        events = f"/v1/conversations/{target}/events"
        assert http.get(events, params={"token": "not-a-token"}).status_code == 401
        assert http.get("/v1/me", params={"token": "alice-token"}).status_code == 401
        # Nothing reached alice's conversation.
        mine = http.get(f"/v1/conversations/{target}", headers=ALICE).json()
        assert mine["status"] == "waiting_for_user" and mine["message_count"] == 2
