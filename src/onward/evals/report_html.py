"""The eval report as one self-contained HTML page a person can read: totals first,
one row per conversation with token bars, then every conversation turn by turn with
the turns that differ marked. No script, no external resource; every recorded or
generated text is escaped (a transcript may hold anything a user or model typed)."""

from __future__ import annotations

from html import escape

from onward.agent.eval_contracts import CaseReport, EvalReport, TurnDecisions, TurnReport
from onward.evals import figures

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:78rem;color:#1d1d1f}
body{padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
code{font:12.5px ui-monospace,monospace;background:#f2f2f5;padding:0 .25em;border-radius:3px}
.muted{color:#6e6e73}.cards{display:flex;flex-wrap:wrap;gap:.75rem;margin:1rem 0 1.5rem}
.card{border:1px solid #d2d2d7;border-radius:8px;padding:.6rem .9rem;min-width:9rem}
.card b{display:block;font-size:1.25rem}.bad{color:#b3261e}.good{color:#1b7f3b}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #e5e5ea;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f7;font-weight:600}tr.differs td{background:#fff4f2}
.bar{height:.55rem;border-radius:3px;margin:2px 0}.rec{background:#8e8e93}.cand{background:#0a66c2}
.bars{min-width:10rem}.calls{font:12.5px ui-monospace,monospace;white-space:pre-wrap}
.end{font-weight:600}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _card(label: str, value: str, bad: bool | None = None) -> str:
    tone = "" if bad is None else ("bad" if bad else "good")
    return (
        f'<div class="card"><span class="muted">{_e(label)}</span>'
        f'<b class="{tone}">{_e(value)}</b></div>'
    )


def _cards(report: EvalReport) -> str:
    t = report.totals
    return (
        '<section class="cards">'
        + "".join(
            (
                _card("conversations", str(t.cases)),
                _card("diverged", f"{t.diverged_cases} of {t.cases}", t.diverged_cases > 0),
                _card("turns that differ", str(t.decisions_differ), t.decisions_differ > 0),
                _card(
                    "calls added / removed / changed",
                    f"{t.calls_added} / {t.calls_removed} / {t.calls_changed}",
                ),
                _card("side effects", str(t.side_effects), t.side_effects > 0),
                _card(
                    "answered (recorded → candidate)",
                    f"{t.recorded_reached} → {t.candidate_reached}",
                ),
                _card("tokens", figures.tokens(t.recorded_usage, t.candidate_usage)),
                _card("cost", figures.costs(t.recorded_usage, t.candidate_usage)),
                _card("model time", figures.seconds(t.recorded_model_s, t.candidate_model_s)),
            )
        )
        + "</section>"
    )


def _bars(case: CaseReport, widest: int) -> str:
    def bar(kind: str, value: int) -> str:
        width = 0.0 if widest == 0 else 100 * value / widest
        return f'<div class="bar {kind}" style="width:{width:.1f}%" title="{value:,} tokens"></div>'

    return bar("rec", case.recorded_usage.total_tokens) + bar(
        "cand", case.candidate_usage.total_tokens
    )


def _cases_table(report: EvalReport) -> str:
    widest = max(
        (max(c.recorded_usage.total_tokens, c.candidate_usage.total_tokens) for c in report.cases),
        default=0,
    )
    rows: list[str] = []
    for c in report.cases:
        link = f'<a href="#case-{c.index + 1}">{_e(c.case_id)}</a>'
        if c.error is not None:
            rows.append(
                f'<tr class="differs"><td>{link}</td><td>{_e(c.goal)}</td>'
                f'<td colspan="6" class="bad">error: {_e(c.error)}</td></tr>'
            )
            continue
        differing = ", ".join(map(str, c.diverging_turns)) or "none"
        rows.append(
            f'<tr class="{"differs" if c.diverged else ""}"><td>{link}</td><td>{_e(c.goal)}</td>'
            f"<td>{_e(differing)}</td>"
            f"<td>{c.calls_added} / {c.calls_removed} / {c.calls_changed}</td>"
            f"<td>{c.not_executed}</td><td>{c.side_effects}</td>"
            f"<td>{_e(figures.reached(c.recorded_reached, c.candidate_reached))}</td>"
            f'<td class="bars">{_e(figures.tokens(c.recorded_usage, c.candidate_usage))}'
            f"{_bars(c, widest)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>conversation</th><th>goal</th><th>turns that differ</th>"
        "<th>calls + / - / ~</th><th>not run</th><th>side effects</th><th>answered</th>"
        '<th>tokens <span class="muted">(grey recorded, blue candidate)</span></th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _side(side: TurnDecisions | None) -> str:
    if side is None:
        return '<span class="muted">not reached: the conversation had ended</span>'
    calls = "\n".join(figures.call(c, limit=400) for c in side.calls)
    out = f'<div class="calls">{_e(calls)}</div>' if calls else ""
    out += f'<span class="end">{_e(side.end)}</span>'
    if side.text:
        out += f": {_e(side.text)}"
    return out


def _turn_row(turn: TurnReport) -> str:
    verdict = "; ".join(turn.reasons) if turn.differs else "same"
    if turn.text_changed and not turn.differs:
        verdict = "same decisions, other words"
    return (
        f'<tr class="{"differs" if turn.differs else ""}"><td>{turn.turn}</td>'
        f"<td>{_e(turn.user)}</td><td>{_side(turn.recorded)}</td>"
        f'<td>{_side(turn.candidate)}</td><td class="{"bad" if turn.differs else ""}">'
        f"{_e(verdict)}</td></tr>"
    )


def _case_section(c: CaseReport) -> str:
    head = (
        f'<h2 id="case-{c.index + 1}">{_e(c.case_id)} '
        f'<span class="muted">({_e(c.goal)})</span></h2>'
    )
    if c.error is not None:
        return head + f'<p class="bad">{_e(c.error)}</p>'
    facts = (
        f"<p>candidate conversation <code>{_e(c.conversation_id)}</code> · model "
        f"{_e(c.recorded_model or '?')} → {_e(c.candidate_model or '?')} · answered "
        f"{_e(figures.reached(c.recorded_reached, c.candidate_reached))} · tokens "
        f"{_e(figures.tokens(c.recorded_usage, c.candidate_usage))} · cost "
        f"{_e(figures.costs(c.recorded_usage, c.candidate_usage))} · model time "
        f"{_e(figures.seconds(c.recorded_model_s, c.candidate_model_s))} · replay took "
        f"{c.candidate_elapsed_s:.2f} s</p>"
    )
    rows = "".join(_turn_row(t) for t in c.turns)
    return (
        head
        + facts
        + "<table><thead><tr><th>turn</th><th>user</th><th>recorded</th><th>candidate</th>"
        + f"<th>verdict</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _ran(report: EvalReport) -> str:
    n = report.totals.side_effects
    return "no tool ran" if n == 0 else f"{n} tool activities ran (expected none)"


def render_html(report: EvalReport) -> str:
    """The whole report as one HTML document."""
    title = f"onward eval {report.run_id}"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Eval <code>{_e(report.run_id)}</code></h1>"
        f'<p class="muted">candidate: {_e(report.candidate.describe())} · '
        f"{_e(report.started_at.isoformat(timespec='seconds'))} to "
        f"{_e(report.finished_at.isoformat(timespec='seconds'))}</p>"
        + _cards(report)
        + _cases_table(report)
        + "".join(_case_section(c) for c in report.cases)
        + f'<p class="muted">onward eval report, schema version {report.schema_version}. '
        f"Recorded tool calls got their recorded results; {_ran(report)}.</p>"
        "</body></html>\n"
    )
