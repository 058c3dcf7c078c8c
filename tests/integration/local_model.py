"""What the tests against a real local model share: the check that the `onward[test]`
extra (llama-cpp-python and the packaged Qwen 0.5B) is installed, and patient timeouts."""

from __future__ import annotations

import importlib.util
import os

import pytest

from onward.agent.contracts import ConversationOptions
from onward.testing.packaged_model import missing_packages

SLOW_MACHINE = ConversationOptions(model_timeout_s=600, model_heartbeat_s=60)
"""A model call on 2 busy cores can take minutes; a slow call is not a failed one."""


def require_local_model() -> None:
    """Skip the calling module when the extra is missing, except in CI, where that is
    an error (`make test` installs it), so no test is skipped there unseen."""
    missing = [*missing_packages()]
    if importlib.util.find_spec("llama_cpp") is None:
        missing.append("llama_cpp")
    if not missing:
        return
    reason = f"the `onward[test]` extra is not installed ({', '.join(missing)} missing)"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI must install onward[test] (`make test` does): {reason}")
    pytest.skip(reason, allow_module_level=True)
