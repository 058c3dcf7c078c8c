"""onward's benchmark harness: `python -m bench` (or `onward bench`).

Measures per-step orchestration overhead against an asyncio loop and LangGraph,
throughput with 1,000 concurrent conversations, the global LLM concurrency cap,
recovery after SIGKILL and worker memory with idle conversations, on an embedded
Temporal dev server the harness starts itself. Results go to bench/results/.
"""
