"""ONNX Runtime in one place: provider choice, thread settings, one session per model."""

from swapline.runtime.session import PROVIDER_ORDER, RuntimeSettings, SessionFactory, shared_sessions

__all__ = ["PROVIDER_ORDER", "RuntimeSettings", "SessionFactory", "shared_sessions"]
