"""Settings, passed down from the caller (never read from globals).

`SwapSettings` holds what every mode shares (models, how they run, the label, which faces,
swapper options); `VideoOptions` and `LiveOptions` hold what only one mode needs. All are
frozen: build a changed copy with dataclasses.replace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from swapline.errors import SwaplineError
from swapline.faces.detector import DetectorSettings
from swapline.faces.smoothing import OneEuroSettings
from swapline.pipeline.rate import AdaptiveRateSettings
from swapline.pipeline.thermal import ThermalSettings
from swapline.runtime import RuntimeSettings
from swapline.swap import MeshSwapSettings
from swapline.trust import LabelSettings
from swapline.trust.c2pa.settings import CredentialSettings
from swapline.trust.liveness import LivenessSettings
from swapline.trust.watermark import WatermarkSettings

BLAZEFACE = ("full", "short")
FACE_MODES = ("all", "largest", "reference")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
DEVICES = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}


@dataclass(frozen=True)
class ModelChoices:
    """Which model does each job: a built-in name, a registry name, or a path to an .onnx file."""

    detector: str = "full"  # full | short (BlazeFace, built in) | scrfd_2.5g | yoloface_8n | x.onnx
    swapper: str = "mesh"  # mesh (built in) | inswapper_128 | inswapper_128_fp16 | simswap_256 | x.onnx
    encoder: str = "w600k_r50"  # ArcFace model behind the neural swappers
    enhancer: str | None = None  # gfpgan_1.4 | x.onnx
    identity: str = "dlib"  # identity matching (reference mode): dlib | w600k_r50 | w600k_mbf
    occluder: str | None = None  # neural swappers: xseg_3 keeps hands and objects in front
    parser: str | None = None  # neural swappers: bisenet_resnet_34 limits the swap to face regions
    offline: bool = False

    @property
    def neural(self) -> bool:
        extras = (self.enhancer, self.occluder, self.parser)
        return self.swapper != "mesh" or any(extras) or self.detector not in BLAZEFACE


@dataclass(frozen=True)
class FaceSelection:
    """Which target faces are swapped: decided here once, for stills, video and live alike."""

    mode: str = "all"  # all | largest | reference
    reference: Path | None = None  # a photo of the person to replace (mode "reference")
    max_faces: int | None = None  # most faces swapped per frame; None: every face found
    # Streams: a face that appears mid-shot is swapped once seen this many frames (no pop-in
    # from a one-frame false detection); faces present when a shot starts are swapped at once.
    confirm_frames: int = 3
    # Streams: a tracked face that is missed is held (last position) this many frames before it
    # is dropped, so a flicker of the landmark score does not make the swap pop out.
    hold_frames: int = 2

    def __post_init__(self) -> None:
        if self.mode not in FACE_MODES:
            raise SwaplineError(f"faces must be one of {', '.join(FACE_MODES)}, not {self.mode!r}")
        if self.mode == "reference" and self.reference is None:
            raise SwaplineError("faces 'reference' needs a reference photo (--reference PHOTO)")
        if self.max_faces is not None and self.max_faces < 1:
            raise SwaplineError(f"max faces must be at least 1, not {self.max_faces}")


@dataclass(frozen=True)
class SwapSettings:
    """Everything a swap session needs, whatever the mode."""

    models: ModelChoices = field(default_factory=ModelChoices)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    label: LabelSettings = field(default_factory=LabelSettings)
    faces: FaceSelection = field(default_factory=FaceSelection)
    swapper: MeshSwapSettings = field(default_factory=MeshSwapSettings)
    # BlazeFace thresholds; which detector (and range) runs is models.detector.
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    smoothing: OneEuroSettings = field(default_factory=OneEuroSettings)
    # Streams: mean absolute change of a 32x32 grey thumbnail (0-255) above which a frame is a
    # hard cut; tracks and smoothing restart there.
    scene_cut: float = 30.0
    # C2PA signing of every output file (None: off). Without the 'c2pa' extra and with no
    # certificate of the user's, outputs are left unsigned and the log says so once.
    credentials: CredentialSettings | None = field(default_factory=CredentialSettings)
    # The invisible mark in every output frame (always on, like the label); a key of the user's
    # makes marks only that key can read.
    mark: WatermarkSettings = field(default_factory=WatermarkSettings)
    # Threads for the per-face work of one frame (landmark passes, swaps of faces far apart):
    # None: the cores, at most 4; 1: one face after another on the calling thread.
    face_workers: int | None = None


@dataclass(frozen=True)
class VideoOptions:
    crf: int = 20
    preset: str = "veryfast"
    segment_frames: int = 300
    workers: int = 2  # compositing threads
    # Compose in this many worker processes instead (0: threads in this process). For machines
    # with more cores than one process can use: the swap holds the GIL a third of its time.
    processes: int = 0
    # x264's threads are chosen for this many cores (None: this machine's). Its output follows
    # its thread count, so a batch sets its driver's here: chunks encoded on nodes with other
    # core counts then make the bytes a single run on the driver's machine makes.
    encoder_cores: int | None = None

    def __post_init__(self) -> None:
        if self.segment_frames < 1:
            raise SwaplineError(f"segment frames must be at least 1, not {self.segment_frames}")
        if self.preset not in X264_PRESETS:
            raise SwaplineError(f"preset must be one of {', '.join(X264_PRESETS)}, not {self.preset!r}")
        if self.processes < 0:
            raise SwaplineError(f"processes must be 0 or more, not {self.processes}")
        if self.encoder_cores is not None and self.encoder_cores < 1:
            raise SwaplineError(f"encoder cores must be at least 1, not {self.encoder_cores}")
        if not 0 <= self.crf <= 51:
            raise SwaplineError(f"crf must be between 0 and 51, not {self.crf}")


@dataclass(frozen=True)
class LiveOptions:
    max_latency_ms: float = 200.0  # a frame older than this at any hand-off is dropped
    queue_size: int = 1
    rate: AdaptiveRateSettings = field(default_factory=AdaptiveRateSettings)
    thermal: ThermalSettings = field(default_factory=ThermalSettings)
    # Track and compose in two threads, so frame N+1's landmarks run while frame N is composited.
    split_stages: bool = True
    stall_ms: float = 0.0  # benchmark hiccup: the compose stage sleeps this long...
    stall_every: int = 30  # ...every this many frames
    liveness: LivenessSettings | None = None  # ask for a blink, then a nod or turn, before swapping


def providers_for(device: str | None = None, providers: str | None = None) -> tuple[str, ...] | None:
    """Execution providers from `--device cpu|cuda|tensorrt` or an explicit comma list."""
    if providers:
        return tuple(p.strip() for p in providers.split(",") if p.strip())
    if device:
        if device not in DEVICES:
            raise SwaplineError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
        return DEVICES[device]
    return None
