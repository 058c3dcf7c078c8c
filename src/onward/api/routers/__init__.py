"""One router per resource: conversations, goals, and the caller/system info."""

from onward.api.routers import conversations, goals, system

__all__ = ["conversations", "goals", "system"]
