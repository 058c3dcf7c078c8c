"""`clock-and-git`: a goal whose tools all come from MCP servers nobody here wrote.

- `mcp-server-time` (PyPI): the current time in a zone, and converting a time
  between zones. Its tools say they are read-only, so they run without asking.
- `mcp-server-git` (PyPI): a repository's status, log, diffs, branches and commits.
  The reading tools run at once; the ones that change the repository (`git_add`,
  `git_commit`, `git_create_branch`, `git_checkout`) are not marked read-only, so
  each waits for a human's yes, and `git_reset` is denied outright.

Both run as stdio subprocesses of the worker (`pip install 'onward[mcp]'` brings
them), one per call: neither keeps state between calls. The git server reads any
repository the worker's user can read, at the path the user names.
"""

from __future__ import annotations

from onward.agent.specs import ExampleTurn
from onward.goals.base import Goal
from onward.tools.mcp import McpServer

TIME = McpServer.stdio("time", "mcp-server-time")
GIT = McpServer.stdio("git", "mcp-server-git", approval={"git_reset": "deny"})

CLOCK_AND_GIT = Goal(
    name="clock-and-git",
    description="Times across time zones, and what changed in a git repository.",
    instructions=(
        "You answer two kinds of questions.\n"
        "Time: use the time tools for the current time and for any conversion between "
        "time zones; never work out offsets yourself. Name zones the IANA way "
        "(America/Chicago for Austin, Asia/Tokyo for Tokyo).\n"
        "Git: pass the repository path the user gave as `repo_path` to every git tool; "
        "ask for the path if you do not have one. Summarise commits by what changed "
        "(files, intent), citing short hashes. Only change a repository when the user "
        "asked for it."
    ),
    starter_prompt=(
        "Ask me what time it is in Tokyo when it is 9 am in Austin, or what changed in "
        "the last three commits of a repository on this machine."
    ),
    examples=[
        ExampleTurn(
            user="what time is it in Tokyo when it is 9 am in Austin?",
            assistant="(convert_time from America/Chicago 09:00 to Asia/Tokyo) It is "
            "midnight the next day in Tokyo, 15 hours ahead.",
        )
    ],
    mcp=[TIME, GIT],
)
