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
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.runtime import Runtime

from onward.cli import evals as cli_eval
from onward.cli import model as cli_model
from onward.cli import ops as cli_ops
from onward.cli.contributed import discovered_commands, register_contributed
from onward.client.connect import connect
from onward.config import Settings, get_settings
from onward.exceptions import UserError
from onward.observability import metrics_runtime
from onward.processes import port_open, spawn, stop, wait_for_port
from onward.redaction import mask_url

app = typer.Typer(no_args_is_help=True, help="Durable AI agents on Temporal.")
console = Console()


@app.callback()
def _check_configuration() -> None:
    """Durable AI agents on Temporal."""
    # Read the configuration once up front: a typo in an ONWARD_* variable is a clear
    # one-line error here rather than a traceback from deep inside a command.
    try:
        get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            console.print(
                f"[red]invalid configuration: ONWARD_{field.upper()}: {error['msg']}[/red]",
                markup=True,
                highlight=False,
            )
        raise typer.Exit(2) from exc


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
            children["server"] = _start_server(settings, logs)
            if children["server"].poll() is not None:
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
        console.print(f"  Temporal UI   : {mask_url(settings.web_ui_url)}")
    console.print(f"  data dir      : {settings.data_dir.resolve()}")
    _print_signin(settings)
    console.print("Press Ctrl-C to stop.")


def _print_signin(settings: Settings) -> None:
    from onward.api.auth import signin_url
    from onward.api.settings import ApiSettings

    url = signin_url(settings, ApiSettings())
    if url is None:
        console.print("  sign in       : with a token from ONWARD_API_TOKENS")
    else:
        # Like Jupyter: the token in the URL signs the browser in once.
        console.print(f"  open          : [link={url}]{url}[/link]", soft_wrap=True)


def _start_server(settings: Settings, logs: Path) -> subprocess.Popen[bytes]:
    """Start the embedded server (on the data dir's database) and wait until it
    listens; a server that exits meanwhile is returned as is (the caller checks)."""
    # A server that is still shutting down keeps the port (and the database): a new
    # one started now would fail to bind, so wait for it to let go first.
    deadline = time.monotonic() + 30
    while port_open(settings.embedded_host, settings.embedded_port):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    proc = spawn(_child("server", settings), log=logs / "server.log")
    wait_for_port(settings.embedded_host, settings.embedded_port, 60, proc)
    return proc


RESTART_WINDOW_S = 60.0


def _supervise(
    children: dict[str, subprocess.Popen[bytes]], settings: Settings, logs: Path
) -> None:
    """Restart any child that dies: the worker, the API, and the embedded Temporal
    server (on the same database, so conversations continue where they were; the
    worker and the API reconnect by themselves). A child that keeps dying is
    restarted with growing pauses, up to 30 s."""
    recent: dict[str, list[float]] = {}
    while True:
        time.sleep(0.5)
        for name, proc in list(children.items()):
            code = proc.poll()
            if code is None:
                continue
            now = time.monotonic()
            deaths = [t for t in recent.get(name, []) if now - t < RESTART_WINDOW_S] + [now]
            recent[name] = deaths
            pause = 0.0 if len(deaths) <= 2 else min(30.0, 0.5 * 2 ** (len(deaths) - 2))
            what = "Temporal server" if name == "server" else name
            console.print(
                f"[yellow]{what} exited ({code}); restarting"
                + (f" in {pause:.0f} s" if pause >= 1 else "")
                + "[/yellow]"
            )
            time.sleep(pause)
            if name == "server":
                children[name] = _start_server(settings, logs)
                if children[name].poll() is None:
                    console.print("[green]Temporal server is back on the same database[/green]")
            else:
                children[name] = spawn(_child(name, settings), log=logs / f"{name}.log")


@app.command()
def server() -> None:
    """Run only the embedded Temporal dev server (state in the data dir)."""
    from onward.server import EmbeddedServer

    settings = get_settings()
    embedded = EmbeddedServer(settings)
    signal.signal(signal.SIGTERM, _raise_stop)
    code = 0
    try:
        embedded.start()
        console.print(f"Temporal on {settings.target_address}, Web UI {settings.web_ui_url}")
        assert embedded.process is not None
        code = embedded.process.wait()
        # Not asked to stop, so the server died: say so by our exit status, so that a
        # supervisor (`onward up`, systemd) restarts us.
        console.print(f"[red]the Temporal server exited ({code})[/red]")
        code = code or 1
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        embedded.stop()
    if code:
        raise typer.Exit(code if code > 0 else 1)


@app.command()
def worker() -> None:
    """Run a worker (conversation, tool and llm task queues)."""
    from onward.models.factory import build_model
    from onward.redaction import redact_logs
    from onward.worker import run_worker

    settings = get_settings()
    redact_logs()

    async def main() -> None:
        client = await _connect_with_retry(settings, runtime=metrics_runtime(settings))
        await run_worker(settings, client, build_model(settings))

    _run_until_signal(main())


@app.command()
def api() -> None:
    """Run the HTTP API and web UI."""
    import uvicorn

    from onward.api.app import create_app, uvicorn_log_config
    from onward.redaction import redact_logs

    settings = get_settings()
    redact_logs()
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        log_config=uvicorn_log_config(),
    )


@app.command()
def doctor() -> None:
    """Print the effective configuration (secrets masked), the model and Temporal's state."""
    from onward.api.temporal import TemporalConnection
    from onward.models.factory import describe_model
    from onward.redaction import mask_urls

    settings = get_settings()
    table = Table("setting", "value", title="onward configuration")
    for key, value in settings.masked().items():
        table.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    console.print(table)
    console.print(f"model: {mask_urls(describe_model(settings))}")
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


# ------------------------------------------------------------ terminal clients

_URL_HELP = "API base URL; default from ONWARD_API_HOST/ONWARD_API_PORT."
_TOKEN_HELP = "API token; default: the local user's token from the data dir."


def _api_target(url: str | None, token: str | None) -> tuple[str, str]:
    from onward.api.auth import local_base_url, read_local_token
    from onward.api.settings import ApiSettings

    settings = get_settings()
    if token is None:
        api = ApiSettings()
        token = read_local_token(api.token_file(settings.data_dir))
        if token is None:
            console.print(
                "[red]No API token: start onward with `onward up` (it creates the local "
                "token) or pass --token.[/red]"
            )
            raise typer.Exit(2)
    return (url or local_base_url(settings)).rstrip("/"), token


@app.command()
def chat(
    goal: str = typer.Option("travel", "--goal", "-g", help="Goal of a new conversation."),
    resume: str | None = typer.Option(None, "--resume", "-r", help="Continue this conversation."),
    fork: str | None = typer.Option(
        None,
        "--fork",
        metavar="ID@TURN",
        help="Fork conversation ID after its first TURN turns and chat in the fork.",
    ),
    url: str | None = typer.Option(None, "--url", help=_URL_HELP),
    token: str | None = typer.Option(None, "--token", envvar="ONWARD_API_TOKEN", help=_TOKEN_HELP),
) -> None:
    """Chat in the terminal (through the API): replies stream, approvals are y/n,
    Ctrl-D leaves the conversation waiting."""
    if fork and resume:
        console.print("give --fork or --resume, not both", style="red")
        raise typer.Exit(2)
    from onward.cli.chat import chat as run_chat
    from onward.exceptions import ChatError

    base, secret = _api_target(url, token)

    def write(text: str) -> None:
        typer.echo(text, nl=False)

    try:
        asyncio.run(run_chat(base, secret, goal=goal, resume=resume, write=write, fork=fork))
    except ChatError as exc:
        console.print(str(exc), style="red", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        typer.echo("")


@app.command()
def conversations(
    url: str | None = typer.Option(None, "--url", help=_URL_HELP),
    token: str | None = typer.Option(None, "--token", envvar="ONWARD_API_TOKEN", help=_TOKEN_HELP),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="Show at most this many."),
) -> None:
    """List my conversations, newest first."""
    from rich.markup import escape

    from onward.cli.chat import list_conversations
    from onward.cli.chat_render import printable
    from onward.exceptions import ChatError

    base, secret = _api_target(url, token)
    try:
        rows = asyncio.run(list_conversations(base, secret, limit))
    except ChatError as exc:
        console.print(str(exc), style="red", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    table = Table("id", "goal", "started", "first message", title="my conversations")
    for row in rows:
        cells = (row["id"], row["goal"], row["created_at"][:19], row["title"])
        table.add_row(*(escape(printable(str(c))) for c in cells))
    console.print(table if rows else "no conversations yet")


cli_ops.register(app)
cli_model.register(app)
cli_eval.register(app)
try:
    register_contributed(app, discovered_commands())
except UserError as exc:
    # `onward` still starts (`doctor` helps find the mistake); commands that run the
    # goals report the same error when they load them.
    typer.echo(f"the goal modules' commands are not available: {exc}", err=True)
