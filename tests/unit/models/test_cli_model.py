"""`onward model serve`: the command it runs and the settings it prints."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from typer.testing import CliRunner

from onward.cli.main import app
from onward.cli.model import onward_settings, server_command


def test_serve_runs_llama_cpp_server_locally_on_every_core(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    cmd = server_command(model, name="m", host="127.0.0.1", port=8080, threads=4, ctx=8192)
    assert cmd[:3] == [sys.executable, "-m", "llama_cpp.server"]
    pairs = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    assert pairs == {
        "--model": str(model),
        "--model_alias": "m",
        "--host": "127.0.0.1",
        "--port": "8080",
        "--n_threads": "4",
        "--n_threads_batch": "4",
        "--n_ctx": "8192",
    }
    assert onward_settings("m", "127.0.0.1", 8080) == {
        "ONWARD_MODEL": "openai:m",
        "ONWARD_OPENAI_BASE_URL": "http://127.0.0.1:8080/v1",
    }


def test_serve_without_a_model_file_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["model", "serve", "--model", str(tmp_path / "no.gguf")])
    assert result.exit_code == 2
    assert "no model file" in result.output


def test_serve_defaults_to_every_core() -> None:
    result = CliRunner().invoke(app, ["model", "serve", "--help"])
    assert result.exit_code == 0
    assert f"default: {os.cpu_count()}" in result.output.replace("[", "").replace("]", "")
