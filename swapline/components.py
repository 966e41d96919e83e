"""Builds the pipeline's parts from names: built-in or downloadable detector, swapper, enhancer.

Names are registry models (fetched on first use, unless offline) or paths to .onnx files; a
generator given as a path is routed by its signature (128 px -> inswapper, 256 px -> SimSwap).
"""

from __future__ import annotations

from pathlib import Path

from swapline.errors import SwaplineError
from swapline.faces import BlazeFaceDetector, DetectorSettings
from swapline.models.registry import registry
from swapline.models.store import ModelStore
from swapline.runtime import SessionFactory
from swapline.settings import BLAZEFACE, ModelChoices
from swapline.swap import MeshSwapper, MeshSwapSettings


def build_detector(choices: ModelChoices, settings: DetectorSettings, store: ModelStore, sessions: SessionFactory):
    """The chosen detector; BlazeFace's range is the model name, its thresholds come from settings."""
    from swapline.faces.neural_detectors import ScrfdDetector, YoloFaceDetector

    name = choices.detector
    if name in BLAZEFACE:
        return BlazeFaceDetector(name, settings, sessions)
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


def build_swapper(choices: ModelChoices, mesh: MeshSwapSettings, store: ModelStore, sessions: SessionFactory):
    """The swapper named in choices (registration once per source, swap per face)."""
    from swapline.swap.neural import ArcFaceEncoder, InswapperSwapper, SimSwapSwapper

    name = choices.swapper
    if name == "mesh":
        return MeshSwapper(mesh)
    kind = name if name in registry() else _route_swapper(Path(name), sessions)
    encoder = ArcFaceEncoder(choices.encoder, store, sessions)
    if kind.startswith("simswap"):
        return SimSwapSwapper(name, encoder, "arcface_converter_simswap", store, sessions)
    if kind.startswith("inswapper"):
        return InswapperSwapper(name, encoder, store, sessions)
    raise SwaplineError(f"{name}: not a swapper model (try inswapper_128 or simswap_256)")


def build_enhancer(choices: ModelChoices, store: ModelStore, sessions: SessionFactory):
    """The face enhancer run after the swap, or None."""
    if not choices.enhancer:
        return None
    from swapline.swap.neural import GfpganEnhancer

    return GfpganEnhancer(choices.enhancer, store, sessions)


def build_identity_encoder(choices: ModelChoices, store: ModelStore, sessions: SessionFactory):
    """Encoder for 'is this the reference person?': (encoder, same-person distance threshold)."""
    if choices.identity == "dlib":
        from swapline.faces.encoder import SAME_PERSON_DISTANCE, DlibFaceEncoder

        return DlibFaceEncoder(), SAME_PERSON_DISTANCE
    from swapline.swap.neural import ArcFaceEncoder

    # L2 distance of unit ArcFace vectors; 1.1 is a cosine similarity of about 0.4
    return ArcFaceEncoder(choices.identity, store, sessions), 1.1
