"""Side effects only: model calls and tool calls, each run as a Temporal activity."""
