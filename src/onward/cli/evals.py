"""`onward eval`: export recorded conversations, replay them against a candidate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from temporalio.client import Client

from onward.agent.eval_contracts import Candidate, EvalReport
from onward.client.connect import connect
from onward.config import Settings, get_settings
from onward.evals.format import EvalSet, load_eval_set, save_eval_set
from onward.exceptions import ConversationNotFound, OnwardError, UserError

console = Console()
eval_app = typer.Typer(
    no_args_is_help=True,
    help="Replay recorded conversations against a new model or prompt (nothing runs twice).",
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


async def _client(settings: Settings) -> Client:
    try:
        return await connect(settings)
    except RuntimeError as exc:
        raise _fail(
            f"cannot reach Temporal at {settings.target_address} ({exc}): start onward "
            "(`onward up`) or run the eval with --local"
        ) from exc


@eval_app.command("export")
def export(
    ids: Annotated[list[str], typer.Argument(help="Conversation ids to record.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Eval-set file to write.")],
    name: str | None = typer.Option(None, "--name", help="The set's name (default: file stem)."),
) -> None:
    """Write conversations (transcripts, goal specs, decisions, usage) to an eval set."""
    from onward.evals.export import export_conversations

    settings = get_settings()

    async def main() -> EvalSet:
        client = await _client(settings)
        return await export_conversations(client, settings, ids, name=name or out.stem)

    try:
        eval_set = asyncio.run(main())
    except ConversationNotFound as exc:
        raise _fail(str(exc)) from exc
    save_eval_set(eval_set, out)
    console.print(f"wrote {len(eval_set.cases)} conversation(s) to {out}", markup=False)


@eval_app.command("run")
def run(
    eval_set_path: Annotated[Path, typer.Argument(metavar="SET", help="An eval-set file.")],
    model: str | None = typer.Option(None, "--model", help="Candidate model id."),
    instructions: Annotated[
        Path | None,
        typer.Option(help="File with the candidate's instructions (system prompt)."),
    ] = None,
    goal: str | None = typer.Option(
        None, "--goal", help="Use this goal as registered now instead of the recorded spec."
    ),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON here.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write an HTML report here.")
    ] = None,
    local: bool = typer.Option(
        False, "--local", help="Run on a private embedded server with in-process workers."
    ),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Conversations at once."),
    fail_on_divergence: bool = typer.Option(
        False,
        "--fail-on-divergence",
        help="Exit 1 when a conversation diverges, fails or a tool ran (for CI).",
    ),
) -> None:
    """Replay every conversation of SET against the candidate and report the differences."""
    from onward.evals.report_terminal import render

    try:
        eval_set = load_eval_set(eval_set_path)
        text = instructions.read_text(encoding="utf-8") if instructions else None
    except (OnwardError, OSError) as exc:
        raise _fail(str(exc), 2) from exc
    candidate = Candidate(model=model, instructions=text, goal=goal)
    try:
        report = asyncio.run(_run(get_settings(), eval_set, candidate, local, concurrency))
    except UserError as exc:
        raise _fail(str(exc), 2) from exc
    console.print(render(report))
    _write(report, json_out, html_out)
    t = report.totals
    if fail_on_divergence and (t.diverged_cases or t.side_effects or t.errors):
        raise _fail(
            f"{t.diverged_cases} of {t.cases} conversation(s) diverged or failed; "
            f"{t.side_effects} side effect(s)"
        )


async def _run(
    settings: Settings, eval_set: EvalSet, candidate: Candidate, local: bool, concurrency: int
) -> EvalReport:
    from onward.evals.local import local_onward
    from onward.models.factory import build_model

    if not local:
        return await _follow(await _client(settings), settings, eval_set, candidate, concurrency)
    if candidate.model is not None:
        build_model(settings.model_copy(update={"model": candidate.model}))  # fails early
    async with local_onward(settings) as (client, private):
        return await _follow(client, private, eval_set, candidate, concurrency)


async def _follow(
    client: Client, settings: Settings, eval_set: EvalSet, candidate: Candidate, concurrency: int
) -> EvalReport:
    from onward.evals.report_terminal import ProgressBar
    from onward.evals.running import start_eval, wait_for_report

    run_id = await start_eval(client, settings, eval_set, candidate, concurrency=concurrency)
    console.print(f"eval {run_id}: {len(eval_set.cases)} conversation(s)", markup=False)
    bar = ProgressBar(len(eval_set.cases))
    with bar.progress:
        return await wait_for_report(client, run_id, bar.update)


def _write(report: EvalReport, json_out: Path | None, html_out: Path | None) -> None:
    from onward.evals.report_html import render_html
    from onward.evals.report_json import render_json

    for path, render in ((json_out, render_json), (html_out, render_html)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(report), encoding="utf-8")
            console.print(f"wrote {path}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
