"""A stateful MCP server over stdio: it counts calls per process (run as a script).

`bump` returns how many times it was called in this process and the process id, so
a test can tell a kept session (the count goes on) from a new one (it restarts).
"""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("counter")
_count = 0


@server.tool()
def bump() -> dict[str, int]:
    """Count one more call."""
    global _count
    _count += 1
    return {"count": _count, "pid": os.getpid()}


@server.tool()
def getenv(name: str) -> str:
    """A variable of this process's environment ("" when unset)."""
    return os.environ.get(name, "")


if __name__ == "__main__":
    server.run()
