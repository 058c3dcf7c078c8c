"""`onward chat` and `onward conversations` through typer's runner, against a real API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.cli.main import _print_signin, app
from onward.config import get_settings
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, ApiFactory, serve

runner = CliRunner()


async def _invoke(args: list[str], stdin: str = "") -> tuple[int, str]:
    # The CLI runs its own event loop (asyncio.run), so it gets a thread of its own.
    result = await asyncio.to_thread(runner.invoke, app, args, input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


async def test_chat_streams_replies_and_asks_for_approval(api: ApiFactory) -> None:
    model = ScriptedModel(
        [
            AskUser(text="How much?"),
            CallTools(
                text="Sending it now.",
                calls=[ToolCall(call_id="t1", tool="transfer", args={"amount": 7, "to": "kim"})],
            ),
            Finish(answer="Sent 7 to kim."),
        ]
    )
    async with api(model) as a, serve(a.app) as url:
        args = ["chat", "--goal", "test-math", "--url", url, "--token", "alice-token"]
        code, out = await _invoke(args, "send money to kim\n7\ny\n")
        listed = (await a.http.get("/v1/conversations", headers=ALICE)).json()["conversations"]
        cid = listed[0]["id"]
        result = await a.convs.result(cid)
    assert code == 0, out
    assert "test-math: Arithmetic help." in out
    assert "agent> How much?" in out
    assert 'approval needed: transfer({"amount": 7, "to": "kim"})' in out
    assert "transfer ok: sent 7 to kim" in out
    assert "agent> Sent 7 to kim." in out
    assert "(conversation ended:" in out
    assert result.answer == "Sent 7 to kim." and result.tool_calls[0].ok


async def test_ctrl_d_leaves_and_resume_continues(api: ApiFactory) -> None:
    model = ScriptedModel(lambda request: AskUser(text=f"reply {len(request.messages)}"))
    async with api(model) as a, serve(a.app) as url:
        target = ["--url", url, "--token", "alice-token"]
        code, out = await _invoke(["chat", "-g", "test-math", *target], "hello\n")
        assert code == 0, out
        assert "agent> reply 1" in out and "(left; the conversation waits" in out
        cid = out.split("onward chat --resume ")[-1].split(")")[0].strip()
        assert (await a.convs.snapshot(cid)).status == "waiting_for_user"

        code, out = await _invoke(["chat", "--resume", cid, *target], "again\n")
        assert code == 0, out
        assert "you> hello" in out and "agent> reply 3" in out
        assert out.count("agent> reply 1") == 1  # history shown once, not replayed

        code, table = await _invoke(["conversations", *target])
    assert code == 0
    assert cid in table and "test-math" in table and "hello" in table


async def test_cli_reports_an_unknown_goal_and_a_refused_token(api: ApiFactory) -> None:
    async with api(ScriptedModel([])) as a, serve(a.app) as url:
        code, out = await _invoke(
            ["chat", "-g", "nope", "--url", url, "--token", "alice-token"], "hi\n"
        )
        assert code == 1 and "no goal named `nope`" in out
        code, out = await _invoke(["conversations", "--url", url, "--token", "wrong"])
        assert code == 1 and "401 unauthorized" in out


async def test_up_prints_a_signin_url_and_the_cli_finds_the_local_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONWARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        code, out = await _invoke(["conversations", "--url", "http://127.0.0.1:9"])
        assert code == 2 and "No API token" in out  # nothing created the token yet

        _print_signin(get_settings())
        printed = capsys.readouterr().out
        token = (tmp_path / "api-token").read_text().strip()
        assert f"http://127.0.0.1:8000/?token={token}" in printed

        # With the token in place the CLI uses it; here the API is simply not running.
        code, out = await _invoke(["conversations", "--url", "http://127.0.0.1:9"])
        assert code == 1 and "not reachable" in out and "onward up" in out
    finally:
        get_settings.cache_clear()
