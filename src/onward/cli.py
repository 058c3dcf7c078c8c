"""The `onward` command: `up` for everything at once, and one command per process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.runtime import Runtime

from onward.client import connect
from onward.config import Settings, get_settings
from onward.observability import metrics_runtime
from onward.processes import spawn, stop, wait_for_port

app = typer.Typer(no_args_is_help=True, help="Durable AI agents on Temporal.")
console = Console()


def _child(command: str, settings: Settings) -> list[str]:
    del settings
    return [sys.executable, "-m", "onward", command]


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    del frame
    raise _Stop(signal.Signals(signum).name)


@app.command()
def up() -> None:
    """Start everything: embedded Temporal (unless ONWARD_TEMPORAL_ADDRESS is set),
    a worker and the API. Ctrl-C or SIGTERM stops every child."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    children: dict[str, subprocess.Popen[bytes]] = {}
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        if settings.embedded:
            children["server"] = spawn(_child("server", settings), log=logs / "server.log")
            if not wait_for_port(
                settings.embedded_host, settings.embedded_port, 60, children["server"]
            ):
                console.print(f"[red]Temporal did not start; see {logs / 'server.log'}[/red]")
                raise typer.Exit(1)
        children["worker"] = spawn(_child("worker", settings), log=logs / "worker.log")
        children["api"] = spawn(_child("api", settings), log=logs / "api.log")
        if not wait_for_port(settings.api_host, settings.api_port, 60, children["api"]):
            console.print(f"[red]The API did not start; see {logs / 'api.log'}[/red]")
            raise typer.Exit(1)
        _print_urls(settings)
        _supervise(children, settings, logs)
    except _Stop as reason:
        console.print(f"\nstopping ({reason})…")
    finally:
        # Reverse start order: API first, then the worker, then the server.
        for name in ("api", "worker", "server"):
            if name in children:
                stop(children[name])
    console.print("stopped.")


def _print_urls(settings: Settings) -> None:
    console.print("[bold]onward is running[/bold]")
    console.print(f"  API + chat UI : http://{settings.api_host}:{settings.api_port}/")
    console.print(f"  Temporal      : {settings.target_address}")
    if settings.embedded:
        console.print(f"  Temporal UI   : {settings.web_ui_url}")
    console.print(f"  data dir      : {settings.data_dir.resolve()}")
    console.print("Press Ctrl-C to stop.")


def _supervise(
    children: dict[str, subprocess.Popen[bytes]], settings: Settings, logs: Path
) -> None:
    """Restart a worker or API that dies; a dead server ends `up`."""
    while True:
        time.sleep(0.5)
        for name, proc in list(children.items()):
            code = proc.poll()
            if code is None:
                continue
            if name == "server":
                console.print(f"[red]Temporal server exited ({code}); stopping[/red]")
                raise _Stop("server exited")
            console.print(f"[yellow]{name} exited ({code}); restarting[/yellow]")
            children[name] = spawn(_child(name, settings), log=logs / f"{name}.log")


@app.command()
def server() -> None:
    """Run only the embedded Temporal dev server (state in the data dir)."""
    from onward.server import EmbeddedServer

    settings = get_settings()
    embedded = EmbeddedServer(settings)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        embedded.start()
        console.print(f"Temporal on {settings.target_address}, Web UI {settings.web_ui_url}")
        assert embedded.process is not None
        embedded.process.wait()
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        embedded.stop()


@app.command()
def worker() -> None:
    """Run a worker (conversation, tool and llm task queues)."""
    from onward.models.factory import build_model
    from onward.worker import run_worker

    settings = get_settings()

    async def main() -> None:
        client = await _connect_with_retry(settings, runtime=metrics_runtime(settings))
        await run_worker(settings, client, build_model(settings))

    _run_until_signal(main())


@app.command()
def api() -> None:
    """Run the HTTP API and web UI."""
    import uvicorn

    from onward.api.app import create_app

    settings = get_settings()
    uvicorn.run(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_level="warning"
    )


@app.command()
def doctor() -> None:
    """Print the effective configuration (secrets masked), the model and Temporal's state."""
    from onward.api.temporal import TemporalConnection
    from onward.models.factory import describe_model

    settings = get_settings()
    table = Table("setting", "value", title="onward configuration")
    for key, value in settings.masked().items():
        table.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    console.print(table)
    console.print(f"model: {describe_model(settings)}")
    ok, reason = asyncio.run(TemporalConnection(settings).reachable())
    where = "embedded" if settings.embedded else "external"
    if ok:
        console.print(f"temporal: reachable at {settings.target_address} ({where})")
    else:
        console.print(f"temporal: NOT reachable at {settings.target_address} ({where}): {reason}")


async def _connect_with_retry(
    settings: Settings, timeout_s: float = 60.0, runtime: Runtime | None = None
) -> Client:
    """Connect, waiting for a server that is still starting (as under `onward up`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await connect(settings, runtime=runtime)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def _run_until_signal(main: Coroutine[object, object, None]) -> None:
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()
