"""`onward chaos`: kill the worker or the API at random moments, prove nothing is lost.

It drives the bundled example goals and compares their ledgers, so it comes with the
examples (a `CLI_COMMANDS` contribution), not with the core.
"""
