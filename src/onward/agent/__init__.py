"""Code that runs inside Temporal workflows.

Everything under this package must be deterministic: no I/O, no clocks, no randomness
other than `workflow.now()` / `workflow.random()`. Side effects live in
`onward.activities`. Replay tests in `tests/replay/` guard this boundary.
"""
