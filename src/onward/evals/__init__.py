"""Replay evals: run recorded conversations against a new model or prompt.

`onward eval export` writes recorded conversations to an eval-set file (`format`);
`onward eval run` stores its cases, starts an `EvalWorkflow` (`running`), and renders
the report for the terminal, as JSON and as HTML (`report_*`). Nothing a replay calls
has a side effect: recorded calls get their recorded results, others do not run.
"""

from onward.evals.format import FORMAT_VERSION, EvalCase, EvalSet, load_eval_set, save_eval_set

__all__ = ["FORMAT_VERSION", "EvalCase", "EvalSet", "load_eval_set", "save_eval_set"]
