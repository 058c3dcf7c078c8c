"""`onward model serve`: run a local GGUF model behind llama.cpp's OpenAI-compatible
server (from the `local` extra) and print the settings that point onward at it.

The weights are a file the user gives; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from onward.processes import spawn, stop, wait_for_port

model_app = typer.Typer(no_args_is_help=True, help="Run a local model for onward.")


def server_command(
    model: Path, *, name: str, host: str, port: int, threads: int, ctx: int
) -> list[str]:
    """The `python -m llama_cpp.server` command line `serve` runs."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--n_ctx",
        str(ctx),
    ]


def onward_settings(name: str, host: str, port: int) -> dict[str, str]:
    """The environment that makes onward's `openai:` provider use the server."""
    return {"ONWARD_MODEL": f"openai:{name}", "ONWARD_OPENAI_BASE_URL": f"http://{host}:{port}/v1"}


@model_app.command()
def serve(
    model: Annotated[Path, typer.Option("--model", help="The .gguf file to serve.")],
    name: str | None = typer.Option(None, help="Model name clients use (default: file stem)."),
    host: str = typer.Option("127.0.0.1", help="Bind address (keep it local)."),
    port: int = typer.Option(8080, help="Port."),
    threads: int = typer.Option(
        os.cpu_count() or 1, help="CPU threads (default: every core; llama.cpp's is half)."
    ),
    ctx: int = typer.Option(8192, help="Context window in tokens."),
) -> None:
    """Serve MODEL with llama.cpp's OpenAI-compatible server on HOST:PORT.

    Prints the two settings for onward (`ONWARD_MODEL`, `ONWARD_OPENAI_BASE_URL`) once
    the server accepts connections; Ctrl-C stops it.
    """
    if importlib.util.find_spec("llama_cpp") is None or (
        importlib.util.find_spec("llama_cpp.server") is None
    ):
        typer.echo(
            "llama.cpp's server is not installed: `pip install 'onward[local]'` "
            "(it compiles llama-cpp-python once).",
            err=True,
        )
        raise typer.Exit(2)
    if not model.is_file():
        typer.echo(f"no model file at {str(model)!r}: give a .gguf file you have", err=True)
        raise typer.Exit(2)
    alias = name or model.stem
    proc = spawn(server_command(model, name=alias, host=host, port=port, threads=threads, ctx=ctx))

    def _stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        if not wait_for_port(host, port, 300, proc):
            typer.echo("llama.cpp's server did not start (its output is above)", err=True)
            raise typer.Exit(1)
        typer.echo(f"Serving {model.name} on http://{host}:{port}/v1 with {threads} threads.")
        typer.echo("Point onward at it with:")
        for key, value in onward_settings(alias, host, port).items():
            typer.echo(f"  {key}={value}")
        sys.stdout.flush()
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        exited_alone = proc.poll()
        stop(proc)
    if exited_alone:
        raise typer.Exit(exited_alone if exited_alone > 0 else 1)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
