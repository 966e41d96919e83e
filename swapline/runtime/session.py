"""Session factory used by every model.

Providers are tried in the order TensorRT -> CUDA -> CPU; whatever the installed onnxruntime
build offers is used, and the provider that actually runs is logged once per model. Sessions
are cached per (model file, settings) so a model is loaded once per process, never per frame.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort

from swapline.errors import SwaplineError

log = logging.getLogger("swapline.runtime")

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


@dataclass(frozen=True)
class RuntimeSettings:
    """How models run. Defaults suit a small CPU: few threads, no spinning."""

    providers: tuple[str, ...] = PROVIDER_ORDER
    # Threads inside one model call. Small models (BlazeFace, FaceMesh) are fastest on one
    # thread; the pipeline gets its parallelism from running stages side by side instead.
    intra_op_threads: int = 1
    # Spinning threads burn the other core while they wait: bad when stages share 2 cores.
    allow_spinning: bool = False
    trt_cache_dir: Path | None = None
    trt_fp16: bool = True
    extra_options: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def available_providers(wanted: tuple[str, ...]) -> list[str]:
    """The wanted providers this onnxruntime build has, in the wanted order (CPU always last)."""
    have = set(ort.get_available_providers())
    chosen = [p for p in wanted if p in have]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class SessionFactory:
    """Creates and caches ONNX Runtime sessions; thread-safe."""

    def __init__(self, settings: RuntimeSettings | None = None) -> None:
        self.settings = settings or RuntimeSettings()
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._lock = threading.Lock()

    def _options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = max(0, self.settings.intra_op_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        spin = "1" if self.settings.allow_spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        for key, value in self.settings.extra_options:
            options.add_session_config_entry(key, value)
        return options

    def _provider_list(self) -> list:
        providers: list = []
        for name in available_providers(self.settings.providers):
            if name == "TensorrtExecutionProvider":
                cache = (
                    self.settings.trt_cache_dir
                    or Path(os.environ.get("SWAPLINE_HOME", Path.home() / ".cache" / "swapline")) / "trt"
                )
                cache.mkdir(parents=True, exist_ok=True)
                providers.append(
                    (
                        name,
                        {
                            "trt_engine_cache_enable": True,
                            "trt_engine_cache_path": str(cache),
                            "trt_fp16_enable": self.settings.trt_fp16,
                        },
                    )
                )
            else:
                providers.append(name)
        return providers

    def load(self, path: Path | str) -> ort.InferenceSession:
        """The session for this model file, created on first use."""
        key = str(Path(path).resolve())
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                return session
            if not Path(key).is_file():
                raise SwaplineError(f"{path}: model file not found")
            try:
                session = ort.InferenceSession(key, self._options(), providers=self._provider_list())
            except Exception as exc:  # onnxruntime raises several unrelated types
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise SwaplineError(f"{path}: not a loadable ONNX model ({first})") from exc
            log.info("%s runs on %s", Path(key).name, session.get_providers()[0])
            self._sessions[key] = session
            return session


def shared_sessions(settings: RuntimeSettings | None = None) -> SessionFactory:
    """One factory per distinct settings in this process, so every stage shares loaded models."""
    return _shared(settings or RuntimeSettings())


@functools.lru_cache(maxsize=8)
def _shared(settings: RuntimeSettings) -> SessionFactory:
    return SessionFactory(settings)
