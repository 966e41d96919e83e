"""Builds the pipeline's parts from names: built-in or downloadable detector, swapper, enhancer.

Names are registry models (fetched on first use, unless offline) or paths to .onnx files; a
generator given as a path is routed by its signature (128 px -> inswapper, 256 px -> SimSwap).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swapline.errors import SwaplineError
from swapline.faces import BlazeFaceDetector, DetectorSettings
from swapline.faces.face import Face
from swapline.models.registry import registry
from swapline.models.store import ModelStore
from swapline.runtime import SessionFactory
from swapline.swap import MeshSwapper, MeshSwapSettings

BLAZEFACE = ("full", "short")


@dataclass(frozen=True)
class ModelChoices:
    detector: str = "full"  # full | short (BlazeFace, built in) | scrfd_2.5g | yoloface_8n | x.onnx
    swapper: str = "mesh"  # mesh (built in) | inswapper_128 | inswapper_128_fp16 | simswap_256 | x.onnx
    encoder: str = "w600k_r50"  # ArcFace model behind the neural swappers
    enhancer: str | None = None  # gfpgan_1.4 | x.onnx
    identity: str = "dlib"  # identity matching (reference mode): dlib | w600k_r50 | w600k_mbf
    offline: bool = False

    @property
    def neural(self) -> bool:
        return self.swapper != "mesh" or self.enhancer is not None or self.detector not in BLAZEFACE


def build_detector(choices: ModelChoices, settings: DetectorSettings, store: ModelStore, sessions: SessionFactory):
    from swapline.faces.neural_detectors import ScrfdDetector, YoloFaceDetector

    name = choices.detector
    if name in BLAZEFACE:
        return BlazeFaceDetector(DetectorSettings(**{**settings.__dict__, "range": name}), sessions)
    kind = name if name in registry() else _route_detector(Path(name), sessions)
    if kind.startswith("scrfd"):
        return ScrfdDetector(name, store, sessions, max_faces=settings.max_faces)
    return YoloFaceDetector(name, store, sessions, max_faces=settings.max_faces)


def _route_detector(path: Path, sessions: SessionFactory) -> str:
    if not path.is_file():
        raise SwaplineError(f"{path}: model file not found")
    outputs = sessions.load(path).get_outputs()
    return "scrfd" if len(outputs) in (6, 9) else "yoloface"


def _route_swapper(path: Path, sessions: SessionFactory) -> str:
    if not path.is_file():
        raise SwaplineError(f"{path}: model file not found")
    target = {i.name: i.shape for i in sessions.load(path).get_inputs()}.get("target")
    if target and target[-1] == 256:
        return "simswap_256"
    return "inswapper_128"


class EnhancedSwapper:
    """A swapper followed by a face enhancer on the same face."""

    def __init__(self, inner, enhancer):
        self.inner, self.enhancer = inner, enhancer
        self.name = f"{inner.name}+{enhancer.name}"

    def register(self, image, face: Face):
        return self.inner.register(image, face)

    def swap(self, frame, face: Face, source) -> bool:
        done = self.inner.swap(frame, face, source)
        if done:
            self.enhancer.enhance(frame, face)
        return done


def build_swapper(choices: ModelChoices, mesh: MeshSwapSettings, store: ModelStore, sessions: SessionFactory):
    """The swapper named in choices (registration once per source, swap per face)."""
    from swapline.swap.neural import ArcFaceEncoder, GfpganEnhancer, InswapperSwapper, SimSwapSwapper

    name = choices.swapper
    if name == "mesh":
        swapper = MeshSwapper(mesh)
    else:
        kind = name if name in registry() else _route_swapper(Path(name), sessions)
        encoder = ArcFaceEncoder(choices.encoder, store, sessions)
        if kind.startswith("simswap"):
            swapper = SimSwapSwapper(name, encoder, "arcface_converter_simswap", store, sessions)
        elif kind.startswith("inswapper"):
            swapper = InswapperSwapper(name, encoder, store, sessions)
        else:
            raise SwaplineError(f"{name}: not a swapper model (try inswapper_128 or simswap_256)")
    if choices.enhancer:
        swapper = EnhancedSwapper(swapper, GfpganEnhancer(choices.enhancer, store, sessions))
    return swapper


def build_identity_encoder(choices: ModelChoices, store: ModelStore, sessions: SessionFactory):
    """Encoder for 'is this the reference person?': (encoder, same-person distance threshold)."""
    if choices.identity == "dlib":
        from swapline.faces.encoder import SAME_PERSON_DISTANCE, DlibFaceEncoder

        return DlibFaceEncoder(), SAME_PERSON_DISTANCE
    from swapline.swap.neural import ArcFaceEncoder

    # L2 distance of unit ArcFace vectors; 1.1 is a cosine similarity of about 0.4
    return ArcFaceEncoder(choices.identity, store, sessions), 1.1


def make_store(choices: ModelChoices) -> ModelStore:
    return ModelStore(offline=choices.offline)
