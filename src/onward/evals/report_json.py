"""The eval report as JSON, and the JSON schema it follows (`schema_version` names it)."""

from __future__ import annotations

import json
from typing import Any

from onward.agent.eval_contracts import EvalReport


def render_json(report: EvalReport) -> str:
    """The whole report, indented; `diverged` is given per case for readers."""
    data = report.model_dump(mode="json")
    for case, dumped in zip(report.cases, data["cases"], strict=True):
        dumped["diverged"] = case.diverged
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def report_schema() -> dict[str, Any]:
    """The JSON schema of `render_json`'s output."""
    schema = EvalReport.model_json_schema(mode="serialization")
    case = schema["$defs"]["CaseReport"]
    case["properties"]["diverged"] = {"type": "boolean", "title": "Diverged"}
    case.setdefault("required", []).append("diverged")
    return schema
