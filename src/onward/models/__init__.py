"""Models behind one interface: real providers, the offline model, test doubles."""

from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    Model,
    ModelRequest,
    ModelResponse,
)

__all__ = [
    "DeltaCallback",
    "GuardrailRequest",
    "GuardrailResponse",
    "Model",
    "ModelRequest",
    "ModelResponse",
]
