"""Public test helpers: scripted model, fault markers and Temporal environments.

Tests exercise real workers, activities and servers; only the model is faked.
"""

from onward.testing.environments import (
    local_dev_environment,
    time_skipping_environment,
)
from onward.testing.fake_openai import (
    FakeFailure,
    FakeHang,
    FakeOpenAIServer,
    FakeReply,
    FakeToolCall,
)
from onward.testing.scripted import (
    Fault,
    Gated,
    Hang,
    Malformed,
    Permanent,
    RateLimit,
    ScriptedModel,
    ServerError,
    Step,
    Timeout,
)

__all__ = [
    "FakeFailure",
    "FakeHang",
    "FakeOpenAIServer",
    "FakeReply",
    "FakeToolCall",
    "Fault",
    "Gated",
    "Hang",
    "Malformed",
    "Permanent",
    "RateLimit",
    "ScriptedModel",
    "ServerError",
    "Step",
    "Timeout",
    "local_dev_environment",
    "time_skipping_environment",
]
