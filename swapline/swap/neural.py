"""Neural swappers, identity encoder and enhancer through ONNX Runtime; one small class each.

Every model here sees an aligned crop (see swap/align.py) and its output goes back through
the inverse transform onto the face's sub-rectangle, with a feathered mask that keeps the
target's open mouth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swapline.faces.face import Face
from swapline.models.loading import OnnxModel
from swapline.models.store import ModelStore
from swapline.runtime import SessionFactory
from swapline.swap.align import box_mask, five_points, inner_mouth, paste_back, warp_face


def _to_image(output: np.ndarray, low: float, high: float, rgb: bool = True) -> np.ndarray:
    """1x3xHxW model output in [low, high] -> HxWx3 BGR uint8."""
    image = (np.clip(output[0], low, high) - low) / (high - low) * 255.0
    image = image.transpose(1, 2, 0)
    if rgb:
        image = image[:, :, ::-1]
    return np.ascontiguousarray(np.round(image).astype(np.uint8))


class ArcFaceEncoder:
    """512-d identity (ArcFace w600k_r50 / w600k_mbf), L2-normalised."""

    def __init__(self, model: str | Path = "w600k_r50", store: ModelStore | None = None, sessions=None):
        self.model = OnnxModel(model, "w600k_r50", store, sessions)
        self.size = self.model.spec.crop_size

    def raw_embedding(self, image: np.ndarray, face: Face) -> np.ndarray:
        crop, _ = warp_face(image, five_points(face), self.model.spec.template, self.size)
        (embedding,) = self.model.session.run(None, {self.model.input_names[0]: self.model.to_tensor(crop)})
        return embedding[0].astype(np.float32)

    def encode(self, image: np.ndarray, face: Face) -> np.ndarray:
        embedding = self.raw_embedding(image, face)
        return embedding / max(float(np.linalg.norm(embedding)), 1e-12)


@dataclass(frozen=True, eq=False)
class NeuralSource:
    """A registered source for a neural swapper: the identity vector the generator takes."""

    identity: np.ndarray  # (1, 512) float32
    face: Face


class InswapperSwapper:
    """inswapper_128: 128 px aligned target + source latent = normalise(normed ArcFace @ emap)."""

    name = "inswapper_128"

    def __init__(
        self,
        model: str | Path = "inswapper_128",
        encoder: ArcFaceEncoder | None = None,
        store: ModelStore | None = None,
        sessions: SessionFactory | None = None,
    ):
        self.model = OnnxModel(model, "inswapper_128", store, sessions)
        self.encoder = encoder or ArcFaceEncoder("w600k_r50", store, sessions)
        self.emap = self.model.last_initializer().astype(np.float32)  # read once
        self.size = self.model.spec.crop_size
        self.mask = box_mask(self.size)
        self._init_binding()

    def _init_binding(self, force: bool = False) -> None:
        """On a GPU, keep each source identity on the device (IO binding) instead of re-sending it."""
        gpu = self.model.session.get_providers()[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        self.io_binding = gpu or force
        self._device = "cuda" if gpu else "cpu"
        self._on_device: dict[int, tuple[NeuralSource, object]] = {}

    def source_latent(self, normed_embedding: np.ndarray) -> np.ndarray:
        latent = normed_embedding.reshape(1, -1) @ self.emap
        return (latent / max(float(np.linalg.norm(latent)), 1e-12)).astype(np.float32)

    def register(self, image: np.ndarray, face: Face) -> NeuralSource:
        return NeuralSource(self.source_latent(self.encoder.encode(image, face)), face)

    def _device_identity(self, source: NeuralSource):
        import onnxruntime as ort

        cached = self._on_device.get(id(source))
        if cached is None or cached[0] is not source:
            value = ort.OrtValue.ortvalue_from_numpy(source.identity, self._device, 0)
            cached = self._on_device[id(source)] = (source, value)
        return cached[1]

    def generate(self, crop: np.ndarray, source: NeuralSource) -> np.ndarray:
        target = self.model.to_tensor(crop)
        if not self.io_binding:
            (output,) = self.model.session.run(None, {"target": target, "source": source.identity})
            return _to_image(output, 0.0, 1.0)
        binding = self.model.session.io_binding()
        binding.bind_cpu_input("target", target)
        binding.bind_ortvalue_input("source", self._device_identity(source))
        binding.bind_output(self.model.output_names[0], "cpu")  # paste-back runs on the CPU
        self.model.session.run_with_iobinding(binding)
        return _to_image(binding.copy_outputs_to_cpu()[0], 0.0, 1.0)

    def swap(self, frame: np.ndarray, face: Face, source: NeuralSource) -> bool:
        crop, matrix = warp_face(frame, five_points(face), self.model.spec.template, self.size)
        return paste_back(frame, self.generate(crop, source), matrix, self.mask, inner_mouth(face))

    def warm_up(self) -> None:
        """One run on a blank crop: allocation, planning and (on a GPU) CUDA set-up happen here."""
        width = {i.name: i.shape for i in self.model.session.get_inputs()}["source"][-1]
        identity = np.zeros((1, width if isinstance(width, int) else 512), np.float32)
        self.generate(np.zeros((self.size, self.size, 3), np.uint8), NeuralSource(identity, None))


class SimSwapSwapper(InswapperSwapper):
    """simswap_256: 256 px target (ImageNet normalisation) + ArcFace converted to SimSwap's space."""

    name = "simswap_256"

    def __init__(
        self,
        model: str | Path = "simswap_256",
        encoder: ArcFaceEncoder | None = None,
        converter: str | Path = "arcface_converter_simswap",
        store: ModelStore | None = None,
        sessions: SessionFactory | None = None,
    ):
        self.model = OnnxModel(model, "simswap_256", store, sessions)
        self.converter = OnnxModel(converter, "arcface_converter_simswap", store, sessions)
        self.encoder = encoder or ArcFaceEncoder("w600k_r50", store, sessions)
        self.size = self.model.spec.crop_size
        self.mask = box_mask(self.size)
        self._init_binding()

    def register(self, image: np.ndarray, face: Face) -> NeuralSource:
        raw = self.encoder.raw_embedding(image, face).reshape(1, -1)
        (converted,) = self.converter.session.run(None, {self.converter.input_names[0]: raw})
        identity = converted / max(float(np.linalg.norm(converted)), 1e-12)
        return NeuralSource(identity.astype(np.float32), face)


class GfpganEnhancer:
    """GFPGAN 1.4 face restoration on the FFHQ-aligned 512 px crop, blended back."""

    name = "gfpgan_1.4"

    def __init__(self, model: str | Path = "gfpgan_1.4", store=None, sessions=None, strength: float = 0.8):
        self.model = OnnxModel(model, "gfpgan_1.4", store, sessions)
        self.size = self.model.spec.crop_size
        self.mask = box_mask(self.size) * strength

    def enhance(self, frame: np.ndarray, face: Face) -> bool:
        crop, matrix = warp_face(frame, five_points(face), self.model.spec.template, self.size)
        (output,) = self.model.session.run(None, {self.model.input_names[0]: self.model.to_tensor(crop)})
        return paste_back(frame, _to_image(output, -1.0, 1.0), matrix, self.mask, inner_mouth(face))
