"""`onward eval` through typer's runner: what it refuses before anything starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from onward.cli.main import app
from onward.config import get_settings
from onward.processes import free_port

BUNDLED = Path(__file__).resolve().parents[2] / "evals" / "bundled.json"


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def test_eval_is_a_command_with_export_and_run() -> None:
    result = invoke("eval", "--help")
    assert result.exit_code == 0
    assert "export" in result.output and "run" in result.output


def test_a_missing_or_bad_set_is_refused_with_the_reason(tmp_path: Path) -> None:
    missing = invoke("eval", "run", str(tmp_path / "absent.json"), "--local")
    assert missing.exit_code == 2 and "cannot read the eval set" in missing.output
    bad = tmp_path / "old.json"
    bad.write_text('{"version": 0, "cases": []}')
    old = invoke("eval", "run", str(bad))
    assert old.exit_code == 2 and "has format version 0" in old.output


def test_an_unknown_candidate_model_is_refused_before_anything_starts() -> None:
    result = invoke("eval", "run", str(BUNDLED), "--local", "--model", "nope:x")
    assert result.exit_code == 2 and "is not a model onward knows" in result.output


def test_unreadable_instructions_are_refused(tmp_path: Path) -> None:
    result = invoke("eval", "run", str(BUNDLED), "--instructions", str(tmp_path / "none.txt"))
    assert result.exit_code == 2 and "none.txt" in result.output


def test_without_a_server_export_and_run_say_how_to_get_one(tmp_path: Path) -> None:
    env = {"ONWARD_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "ONWARD_DATA_DIR": str(tmp_path)}
    export = invoke("eval", "export", "conv-1", "--out", str(tmp_path / "s.json"), env=env)
    assert export.exit_code == 1 and "cannot reach Temporal" in export.output
    run = invoke("eval", "run", str(BUNDLED), env=env)
    assert run.exit_code == 1 and "--local" in run.output
