"""Session factory used by every model.

Providers are tried in the order TensorRT -> CUDA -> CPU; whatever the installed onnxruntime
build offers is used, and the provider that actually runs is logged once per model. Sessions
are cached per (model file, settings) so a model is loaded once per process, never per frame.

onnxruntime-gpu lists TensorRT whether or not TensorRT's own libraries are installed; asking for it
without them makes ONNX Runtime print a multi-line "EP Error" block on stdout and fall back. So
TensorRT is probed once per process (can its libraries be loaded?) and, when they cannot, skipped
with one log line.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort

from swapline.errors import SwaplineError

log = logging.getLogger("swapline.runtime")

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
PROVIDER_ORDER = (TENSORRT, CUDA, CPU)
GPU_PROVIDERS = (TENSORRT, CUDA)
CONV_ALGO_SEARCH = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
# What ONNX Runtime's TensorRT provider links against (TensorRT 10).
TENSORRT_LIBRARIES = ("libnvinfer.so.10", "libnvinfer_plugin.so.10", "libnvonnxparser.so.10")


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
    # cuDNN convolution algorithm choice on CUDA: EXHAUSTIVE benchmarks every algorithm once per
    # shape (slower first run, fastest after); HEURISTIC picks without timing (to measure against).
    cudnn_conv_algo_search: str = "EXHAUSTIVE"
    # Models whose input follows each photo's size (the still detector's any-size pass) run on the
    # CPU beside a GPU: on an H200 each new input shape cost 0.55-2.6 s on CUDA (about 1 s of it
    # a timed cuDNN search; 0.55-1.5 s remained with HEURISTIC), where with the pass on the CPU
    # a still's whole detection took 20-30 ms at any size (results/gpu_h200/registration.json).
    # Left on the GPU, their convolutions are chosen by cudnn_search_varying_shapes.
    varying_shapes_on_cpu: bool = True
    cudnn_search_varying_shapes: str = "HEURISTIC"
    # On CUDA or TensorRT, load a model's float16 twin (registry "fp16") when it has one.
    prefer_fp16: bool = True
    # On a GPU, bind the generator's inputs through IO binding (the source identity stays on the device).
    io_binding: bool = True
    # CUDA: the generators' convolutions in NHWC (tensor cores read that layout). On an H100 the
    # fp16 stand-in generator took 0.63-0.69 ms against 0.90-1.02 in NCHW; the small detector and
    # landmark models got slower (1.8 -> 2.8 ms each), so they keep NCHW (benchmarks/results/gpu_h100).
    cuda_nhwc: bool = True

    def __post_init__(self) -> None:
        for search in (self.cudnn_conv_algo_search, self.cudnn_search_varying_shapes):
            if search not in CONV_ALGO_SEARCH:
                raise SwaplineError(
                    f"cudnn conv algo search must be one of {', '.join(CONV_ALGO_SEARCH)}, not {search!r}"
                )


def available_providers(wanted: tuple[str, ...], have: Sequence[str] | None = None) -> list[str]:
    """The wanted providers this onnxruntime build has, in the wanted order (CPU always last)."""
    present = set(ort.get_available_providers() if have is None else have)
    chosen = [p for p in wanted if p in present]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


@functools.cache
def tensorrt_loadable() -> bool:
    """Whether TensorRT's libraries load in this process; probed once, one log line when not."""
    for name in TENSORRT_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            log.info("TensorRT skipped: %s cannot be loaded (TensorRT not installed or not on the library path)", name)
            return False
    return True


def provider_list(
    settings: RuntimeSettings, have: Sequence[str] | None = None, tensorrt_ok: bool | None = None
) -> list:
    """The providers (with their options) a session is created with. `have`: the providers this
    onnxruntime build offers (default: ask it); `tensorrt_ok`: whether TensorRT's libraries load
    (default: probe once, only when TensorRT is wanted and offered)."""
    providers: list = []
    for name in available_providers(settings.providers, have):
        if name == TENSORRT:
            if not (tensorrt_loadable() if tensorrt_ok is None else tensorrt_ok):
                continue
            cache = (
                settings.trt_cache_dir
                or Path(os.environ.get("SWAPLINE_HOME", Path.home() / ".cache" / "swapline")) / "trt"
            )
            options = {
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache),
                "trt_fp16_enable": settings.trt_fp16,
            }
            providers.append((name, options))
        elif name == CUDA:
            providers.append((name, {"cudnn_conv_algo_search": settings.cudnn_conv_algo_search}))
        else:
            providers.append(name)
    return providers


def provider_names(providers: list) -> list[str]:
    return [p[0] if isinstance(p, tuple) else p for p in providers]


class SessionFactory:
    """Creates and caches ONNX Runtime sessions; thread-safe.

    available, tensorrt_ok: what provider_list is told instead of asking onnxruntime and probing
    TensorRT (for planning a GPU run from elsewhere, and for tests)."""

    def __init__(
        self,
        settings: RuntimeSettings | None = None,
        available: Sequence[str] | None = None,
        tensorrt_ok: bool | None = None,
    ) -> None:
        self.settings = settings or RuntimeSettings()
        # (file, NHWC, threads, varying shapes) -> session
        self._sessions: dict[tuple[str, bool, int | None, bool], ort.InferenceSession] = {}
        self._lock = threading.Lock()
        self._available, self._tensorrt_ok = available, tensorrt_ok
        self._providers: list | None = None

    @property
    def providers(self) -> list:
        """The provider list every session of this factory asks for (TensorRT probed once)."""
        if self._providers is None:
            self._providers = provider_list(self.settings, self._available, self._tensorrt_ok)
        return self._providers

    @property
    def gpu(self) -> bool:
        """Models run on a GPU provider first (CUDA or TensorRT)."""
        return provider_names(self.providers)[0] in GPU_PROVIDERS

    @property
    def fp16(self) -> bool:
        """Float16 model variants are preferred: a GPU provider, and the setting on."""
        return self.settings.prefer_fp16 and self.gpu

    def _options(self, threads: int | None = None) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = max(0, self.settings.intra_op_threads if threads is None else threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        spin = "1" if self.settings.allow_spinning or threads is not None else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        for key, value in self.settings.extra_options:
            options.add_session_config_entry(key, value)
        return options

    def _provider_list(self, nhwc: bool = False, varying_shapes: bool = False) -> list:
        providers = self.providers
        for name, options in (p for p in providers if isinstance(p, tuple)):
            if name == TENSORRT:
                Path(options["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        if varying_shapes and self.settings.varying_shapes_on_cpu:
            return [CPU]
        cuda: dict[str, str] = {}
        if nhwc and self.settings.cuda_nhwc:
            cuda["prefer_nhwc"] = "1"
        if varying_shapes:
            cuda["cudnn_conv_algo_search"] = self.settings.cudnn_search_varying_shapes
        if cuda:
            providers = [(p[0], {**p[1], **cuda}) if p[0] == CUDA else p for p in providers]
        return providers

    def load(
        self, path: Path | str, nhwc: bool = False, threads: int | None = None, varying_shapes: bool = False
    ) -> ort.InferenceSession:
        """The session for this model file, created on first use.

        nhwc: a convolution-heavy model (a generator) that runs faster in NHWC on CUDA, where the
        settings allow it (cuda_nhwc); elsewhere the option changes nothing.
        threads: intra-op threads for this session instead of the settings', spinning between
        operators (a still's one big pass, which has no other stage to share the cores with).
        varying_shapes: its input's size follows each photo's: beside a GPU it runs on the CPU
        (varying_shapes_on_cpu), or on CUDA with cudnn_search_varying_shapes.
        """
        file = str(Path(path).resolve())
        nhwc = nhwc and self.settings.cuda_nhwc and CUDA in provider_names(self.providers)
        varying_shapes = varying_shapes and self.gpu
        providers = self._provider_list(nhwc, varying_shapes)
        key = (file, nhwc, threads, varying_shapes)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                return session
            if not Path(file).is_file():
                raise SwaplineError(f"{path}: model file not found")
            try:
                session = ort.InferenceSession(file, self._options(threads), providers=providers)
            except Exception as exc:  # onnxruntime raises several unrelated types
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise SwaplineError(f"{path}: not a loadable ONNX model ({first})") from exc
            log.info("%s runs on %s%s", Path(file).name, session.get_providers()[0], " (NHWC)" if key[1] else "")
            self._sessions[key] = session
            return session


def shared_sessions(settings: RuntimeSettings | None = None) -> SessionFactory:
    """One factory per distinct settings in this process, so every stage shares loaded models."""
    return _shared(settings or RuntimeSettings())


@functools.lru_cache(maxsize=8)
def _shared(settings: RuntimeSettings) -> SessionFactory:
    return SessionFactory(settings)
