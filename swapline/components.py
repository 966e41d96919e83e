"""Builds the pipeline's parts from names: built-in or downloadable detector, swapper, enhancer.

Names are registry models (fetched on first use, unless offline) or paths to .onnx files; a
generator given as a path is routed by its signature (128 px -> inswapper, 256 px -> SimSwap).
"""

from __future__ import annotations

from pathlib import Path

from swapline.errors import SwaplineError
from swapline.faces import BlazeFaceDetector, DetectorSettings
from swapline.models.registry import registry
from swapline.models.signature import identify
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
    kind = name if name in registry() else _route(Path(name), "detector", sessions)
    if kind.startswith("scrfd"):
        return ScrfdDetector(name, store, sessions, max_faces=settings.max_faces)
    return YoloFaceDetector(name, store, sessions, max_faces=settings.max_faces)


def _route(path: Path, kind: str, sessions: SessionFactory) -> str:
    """The registry model a local .onnx file stands in for, by its signature."""
    if not path.is_file():
        raise SwaplineError(f"{path}: model file not found")
    found = identify(sessions.load(path), kind)
    if found is None:
        raise SwaplineError(f"{path}: not a {kind} model swapline knows (see `swapline models list`)")
    return found.name


def build_maskers(choices: ModelChoices, store: ModelStore, sessions: SessionFactory) -> tuple:
    """Occlusion and face-parser masks: a hand or a microphone in front of the face stays in front."""
    from swapline.swap.neural import BisenetParser, XsegOccluder

    maskers = []
    if choices.occluder:
        maskers.append(XsegOccluder(choices.occluder, store, sessions))
    if choices.parser:
        maskers.append(BisenetParser(choices.parser, store, sessions))
    return tuple(maskers)


def build_swapper(choices: ModelChoices, mesh: MeshSwapSettings, store: ModelStore, sessions: SessionFactory):
    """The swapper named in choices (registration once per source, swap per face)."""
    from swapline.swap.neural import ArcFaceEncoder, HyperswapSwapper, InswapperSwapper, SimSwapSwapper

    name = choices.swapper
    if name == "mesh":
        return MeshSwapper(mesh, sessions)
    kind = name if name in registry() else _route(Path(name), "swapper", sessions)
    encoder = ArcFaceEncoder(choices.encoder, store, sessions)
    maskers = build_maskers(choices, store, sessions)
    if kind.startswith("hyperswap"):
        return HyperswapSwapper(name, encoder, store, sessions, maskers)
    if kind.startswith("simswap"):
        return SimSwapSwapper(name, encoder, "arcface_converter_simswap", store, sessions, maskers)
    if kind.startswith("inswapper"):
        return InswapperSwapper(name, encoder, store, sessions, maskers)
    raise SwaplineError(f"{name}: not a swapper model (try inswapper_128, simswap_256 or hyperswap_1a_256)")


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
