"""ONNX Runtime in one place: provider choice, thread settings, one session per model."""

from swapline.runtime.session import (
    PROVIDER_ORDER,
    RuntimeSettings,
    SessionFactory,
    provider_list,
    shared_sessions,
    tensorrt_loadable,
)

__all__ = [
    "PROVIDER_ORDER",
    "RuntimeSettings",
    "SessionFactory",
    "provider_list",
    "shared_sessions",
    "tensorrt_loadable",
]
