"""The eval report in the terminal: one row per conversation and a total, then the
turns that diverged with the reasons. Recorded text is shown as text, never as markup."""

from __future__ import annotations

from rich.box import SIMPLE_HEAD
from rich.console import Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from onward.agent.eval_contracts import EvalProgress, EvalReport
from onward.evals import figures


def decisions_table(report: EvalReport) -> Table:
    """Per conversation and in total: the turns that differ, the tool calls added,
    removed and changed, calls not run, side effects, and whether each side answered."""
    t = report.totals
    table = Table(
        title=f"eval {report.run_id}: {report.candidate.describe()}",
        caption=f"{t.diverged_cases} of {t.cases} conversations diverged · calls: "
        "added/removed/changed · answered: recorded→candidate",
        box=SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("conversation", no_wrap=True)
    table.add_column("goal", no_wrap=True)
    for column in ("turns", "differ", "calls", "not run", "effects"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("answered", no_wrap=True)
    for case in report.cases:
        if case.error is not None:
            table.add_row(Text(case.case_id), Text(case.goal), Text(f"error: {case.error}"))
            continue
        table.add_row(
            Text(case.case_id),
            Text(case.goal),
            str(len(case.turns)),
            Text(", ".join(map(str, case.diverging_turns)) or "-", style=_style(case.diverged)),
            f"{case.calls_added}/{case.calls_removed}/{case.calls_changed}",
            str(case.not_executed),
            Text(str(case.side_effects), style=_style(case.side_effects > 0)),
            figures.reached(case.recorded_reached, case.candidate_reached).replace(" ", ""),
        )
    table.add_section()
    table.add_row(
        Text(f"total ({t.cases})", style="bold"),
        "",
        str(sum(len(c.turns) for c in report.cases)),
        Text(str(t.decisions_differ), style=_style(t.decisions_differ > 0)),
        f"{t.calls_added}/{t.calls_removed}/{t.calls_changed}",
        str(t.not_executed),
        Text(str(t.side_effects), style=_style(t.side_effects > 0)),
        f"{t.recorded_reached}→{t.candidate_reached}",
    )
    return table


def usage_table(report: EvalReport) -> Table:
    """Tokens, cost and model time, recorded→candidate, per conversation and in total."""
    table = Table(
        title="recorded → candidate", box=SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    table.add_column("conversation", no_wrap=True)
    for column in ("tokens", "change", "cost", "model time"):
        table.add_column(column, justify="right", no_wrap=True)
    rows = [
        (c.case_id, c.recorded_usage, c.candidate_usage, c.recorded_model_s, c.candidate_model_s)
        for c in report.cases
        if c.error is None
    ]
    t = report.totals
    rows.append(
        ("total", t.recorded_usage, t.candidate_usage, t.recorded_model_s, t.candidate_model_s)
    )
    for i, (name, rec, cand, rec_s, cand_s) in enumerate(rows):
        if i == len(rows) - 1:
            table.add_section()
        table.add_row(
            Text(name, style="bold" if i == len(rows) - 1 else ""),
            f"{rec.total_tokens:,}→{cand.total_tokens:,}",
            figures.change(rec.total_tokens, cand.total_tokens),
            f"{figures.cost(rec)}→{figures.cost(cand)}",
            f"{rec_s:.2f}→{cand_s:.2f} s",
        )
    return table


def divergence_table(report: EvalReport) -> Table | None:
    """Each turn that differs: what the user said, what each side did and why it
    counts; None when nothing differs."""
    rows = [(c, t) for c in report.cases for t in c.turns if t.differs]
    if not rows:
        return None
    table = Table(title="turns that differ", box=SIMPLE_HEAD)
    for column in ("conversation", "turn", "user", "recorded", "candidate", "why"):
        table.add_column(column, overflow="fold")
    for case, turn in rows:
        table.add_row(
            Text(case.case_id),
            str(turn.turn),
            Text(turn.user),
            Text(figures.decisions(turn.recorded)),
            Text(figures.decisions(turn.candidate)),
            Text("; ".join(turn.reasons)),
        )
    return table


def render(report: EvalReport) -> Group:
    """Everything the terminal shows once an eval has finished."""
    parts: list[Table] = [decisions_table(report), usage_table(report)]
    differing = divergence_table(report)
    if differing is not None:
        parts.append(differing)
    return Group(*parts)


def _style(bad: bool) -> str:
    return "red" if bad else "green"


class ProgressBar:
    """A progress bar fed by the eval's `progress` query."""

    def __init__(self, total: int) -> None:
        self.progress = Progress(
            TextColumn("eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
        )
        self._task = self.progress.add_task("eval", total=total, detail="starting")

    def update(self, state: EvalProgress) -> None:
        detail = f"{len(state.running)} running, {state.diverged} diverged"
        if state.errors:
            detail += f", {state.errors} failed"
        self.progress.update(self._task, completed=state.done, total=state.total, detail=detail)
