"""Neural swappers, identity encoder, enhancer and mask models through ONNX Runtime; one small class each.

Every model here sees an aligned crop (see swap/align.py) and its output goes back through
the inverse transform onto the face's sub-rectangle, with a feathered mask that keeps the
target's open mouth. Mask models (XSeg occluder, BiSeNet parser) give a float32 mask of where
the face is visible; a swapper built with them blends only there.

On a GPU the generator's source identity is bound on the device once per source (IO binding);
its output is bound to host memory because paste-back runs on the CPU (cv2): the generated face
must reach the host once per frame whatever is bound, so leaving it on the device would only move
that copy later, not save it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.faces.hands import clear_of_hands
from swapline.models.loading import OnnxModel
from swapline.models.registry import registry, variant
from swapline.models.store import ModelStore
from swapline.runtime import SessionFactory, shared_sessions
from swapline.swap.align import box_mask, five_points, inner_mouth, paste_back, warp_face

log = logging.getLogger("swapline.models")

# BiSeNet (CelebAMask-HQ) classes that are face: skin, brows, eyes, glasses, nose, mouth, lips.
FACE_REGIONS = (1, 2, 3, 4, 5, 6, 10, 11, 12, 13)


def _to_image(output: np.ndarray, low: float, high: float, rgb: bool = True) -> np.ndarray:
    """1x3xHxW model output in [low, high] -> HxWx3 BGR uint8, rounded (InsightFace truncates) and
    saturated, in two OpenCV passes (numpy's clip/scale/transpose/round took ~10x longer)."""
    planes = output[0].astype(np.float32, copy=False)
    image = cv2.merge((planes[2], planes[1], planes[0]) if rgb else tuple(planes))
    scale = 255.0 / (high - low)
    return cv2.addWeighted(image, scale, image, 0.0, -low * scale, dtype=cv2.CV_8U)


def _feed_types(model: OnnxModel) -> dict[str, type]:
    """Per input, the array type the model takes (float16 models may take float16 inputs)."""
    return {i.name: np.float16 if i.type == "tensor(float16)" else np.float32 for i in model.session.get_inputs()}


def _soften(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Blur a 0/1 mask and keep its inner half, so edges fade inside the region, never outside it."""
    return (cv2.GaussianBlur(np.clip(mask, 0.0, 1.0), (0, 0), sigma).clip(0.5, 1.0) - 0.5) * 2.0


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


class _MaskModel:
    """Shared by the mask models: `crop_mask(crop)` on a crop the caller aligned (a swapper's),
    `mask(frame, face)` on the model's own aligned crop, mapped back onto the frame."""

    registry_name = ""
    name = ""

    def __init__(self, model: str | Path | None = None, store: ModelStore | None = None, sessions=None):
        self.model = OnnxModel(model or self.registry_name, self.registry_name, store, sessions)
        self.size = self.model.spec.crop_size
        self.name = self.model.spec.name

    def crop_mask(self, crop: np.ndarray) -> np.ndarray:
        """float32 (h, w) in [0, 1]: 1 where the face shows (a swap may replace it), 0 elsewhere."""
        height, width = crop.shape[:2]
        raw = self._predict(cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_LINEAR))
        mask = cv2.resize(raw.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        return _soften(mask, 5.0 * width / 256.0)

    def mask(self, frame: np.ndarray, face: Face) -> np.ndarray:
        """float32 frame-sized mask: the face's visible pixels within its aligned crop, 0 elsewhere."""
        crop, matrix = warp_face(frame, five_points(face), self.model.spec.template, self.size)
        height, width = frame.shape[:2]
        return cv2.warpAffine(self.crop_mask(crop), cv2.invertAffineTransform(matrix), (width, height), borderValue=0.0)

    def _predict(self, crop: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class XsegOccluder(_MaskModel):
    """XSeg occluder (xseg_3): BGR crop in [0, 1], NHWC; hands, hair or a mic in front are 0."""

    registry_name = "xseg_3"

    def _predict(self, crop: np.ndarray) -> np.ndarray:
        pixels = crop.astype(np.float32)[None] / 255.0  # NHWC, BGR as the model was trained
        (output,) = self.model.session.run([self.model.output_names[0]], {self.model.input_names[0]: pixels})
        mask = np.squeeze(output)
        if mask.ndim != 2:
            raise ValueError(f"{self.model.path}: occluder output {output.shape} is not one mask")
        return mask.clip(0.0, 1.0)


class BisenetParser(_MaskModel):
    """BiSeNet face parser (bisenet_resnet_34): the face classes of its 19 (skin, eyes, nose, lips...)."""

    registry_name = "bisenet_resnet_34"

    def __init__(self, model=None, store=None, sessions=None, regions: Sequence[int] = FACE_REGIONS):
        super().__init__(model, store, sessions)
        self.regions = np.asarray(tuple(regions))

    def _predict(self, crop: np.ndarray) -> np.ndarray:
        (logits,) = self.model.session.run(
            [self.model.output_names[0]], {self.model.input_names[0]: self.model.to_tensor(crop)}
        )
        return np.isin(logits[0].argmax(axis=0), self.regions).astype(np.float32)


class _GeneratorSwapper:
    """A generator on an aligned crop + a source identity: shared running, binding and paste-back.

    maskers: mask models (XsegOccluder, BisenetParser) run on the same crop; the blend is limited
    to where they all see the face.
    """

    name = ""
    registry_name = ""
    output_range = (0.0, 1.0)

    def _load(self, model, store, sessions, maskers: Sequence[_MaskModel]) -> None:
        sessions = sessions or shared_sessions()
        if isinstance(model, str) and model in registry():
            chosen = variant(model, sessions.fp16)
            if chosen != model:
                log.info("%s: loading its float16 twin %s (GPU provider)", model, chosen)
            model = chosen
        self.model = OnnxModel(model, self.registry_name, store, sessions, nhwc=True)
        self.name = self.model.spec.name if isinstance(model, str) and model in registry() else self.registry_name
        self.size = self.model.spec.crop_size
        self.mask = box_mask(self.size)
        self.maskers = tuple(maskers)
        self._types = _feed_types(self.model)
        self._init_binding(use=sessions.settings.io_binding)

    def _init_binding(self, force: bool = False, use: bool = True) -> None:
        """On a GPU, keep each source identity on the device (IO binding) instead of re-sending it."""
        gpu = self.model.session.get_providers()[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        self.io_binding = (gpu and use) or force
        self._device = "cuda" if gpu else "cpu"
        self._on_device: dict[int, tuple[NeuralSource, object]] = {}

    def _device_identity(self, source: NeuralSource):
        import onnxruntime as ort

        cached = self._on_device.get(id(source))
        if cached is None or cached[0] is not source:
            identity = source.identity.astype(self._types["source"])
            value = ort.OrtValue.ortvalue_from_numpy(identity, self._device, 0)
            cached = self._on_device[id(source)] = (source, value)
        return cached[1]

    def _run(self, crop: np.ndarray, source: NeuralSource) -> list[np.ndarray]:
        """The generator's raw outputs for one aligned crop."""
        target = self.model.to_tensor(crop).astype(self._types["target"], copy=False)
        if not self.io_binding:
            return self.model.session.run(
                None, {"target": target, "source": source.identity.astype(self._types["source"], copy=False)}
            )
        binding = self.model.session.io_binding()
        binding.bind_cpu_input("target", target)
        binding.bind_ortvalue_input("source", self._device_identity(source))
        for name in self.model.output_names:
            binding.bind_output(name, "cpu")  # paste-back runs on the CPU: see the module notes
        self.model.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def generate(self, crop: np.ndarray, source: NeuralSource) -> np.ndarray:
        """The swapped face for an aligned crop, BGR uint8."""
        return _to_image(self._run(crop, source)[0], *self.output_range)

    def _blend_mask(self, crop: np.ndarray, outputs: list[np.ndarray]) -> np.ndarray:
        mask = self.mask
        for masker in self.maskers:
            mask = np.minimum(mask, masker.crop_mask(crop))
        return mask

    def swap(self, frame: np.ndarray, face: Face, source: NeuralSource) -> bool:
        crop, matrix = warp_face(frame, five_points(face), self.model.spec.template, self.size)
        outputs = self._run(crop, source)
        swapped = _to_image(outputs[0], *self.output_range)
        mask = self._blend_mask(crop, outputs)
        clear = clear_of_hands(face.hands, matrix, self.size)  # a hand in front stays in front
        if clear is not None:
            mask = np.minimum(mask, clear)
        return paste_back(frame, swapped, matrix, mask, inner_mouth(face))

    def warm_up(self) -> None:
        """One run on a blank crop: allocation, planning and (on a GPU) CUDA set-up happen here."""
        width = {i.name: i.shape for i in self.model.session.get_inputs()}["source"][-1]
        identity = np.zeros((1, width if isinstance(width, int) else 512), np.float32)
        self.generate(np.zeros((self.size, self.size, 3), np.uint8), NeuralSource(identity, None))


class InswapperSwapper(_GeneratorSwapper):
    """inswapper_128: 128 px aligned target + source latent = normalise(normed ArcFace @ emap).

    On CUDA or TensorRT the float16 twin (inswapper_128_fp16) is loaded instead, unless the
    runtime settings say prefer_fp16=False.
    """

    name = registry_name = "inswapper_128"

    def __init__(
        self,
        model: str | Path = "inswapper_128",
        encoder: ArcFaceEncoder | None = None,
        store: ModelStore | None = None,
        sessions: SessionFactory | None = None,
        maskers: Sequence[_MaskModel] = (),
    ):
        self._load(model, store, sessions, maskers)
        self.encoder = encoder or ArcFaceEncoder("w600k_r50", store, sessions)
        self.emap = self.model.last_initializer().astype(np.float32)  # read once

    def source_latent(self, normed_embedding: np.ndarray) -> np.ndarray:
        latent = normed_embedding.reshape(1, -1) @ self.emap
        return (latent / max(float(np.linalg.norm(latent)), 1e-12)).astype(np.float32)

    def register(self, image: np.ndarray, face: Face) -> NeuralSource:
        return NeuralSource(self.source_latent(self.encoder.encode(image, face)), face)


class SimSwapSwapper(_GeneratorSwapper):
    """simswap_256: 256 px target (ImageNet normalisation) + ArcFace converted to SimSwap's space."""

    name = registry_name = "simswap_256"

    def __init__(
        self,
        model: str | Path = "simswap_256",
        encoder: ArcFaceEncoder | None = None,
        converter: str | Path = "arcface_converter_simswap",
        store: ModelStore | None = None,
        sessions: SessionFactory | None = None,
        maskers: Sequence[_MaskModel] = (),
    ):
        self._load(model, store, sessions, maskers)
        self.converter = OnnxModel(converter, "arcface_converter_simswap", store, sessions)
        self.encoder = encoder or ArcFaceEncoder("w600k_r50", store, sessions)

    def register(self, image: np.ndarray, face: Face) -> NeuralSource:
        raw = self.encoder.raw_embedding(image, face).reshape(1, -1)
        (converted,) = self.converter.session.run(None, {self.converter.input_names[0]: raw})
        identity = converted / max(float(np.linalg.norm(converted)), 1e-12)
        return NeuralSource(identity.astype(np.float32), face)


class HyperswapSwapper(_GeneratorSwapper):
    """hyperswap_1a_256: 256 px target in [-1, 1] + normed ArcFace -> face in [-1, 1] and a mask.

    The model already blends its face into the target by its own mask; the mask also limits the
    paste-back, so pixels it left alone are not resampled twice.
    """

    name = registry_name = "hyperswap_1a_256"
    output_range = (-1.0, 1.0)

    def __init__(
        self,
        model: str | Path = "hyperswap_1a_256",
        encoder: ArcFaceEncoder | None = None,
        store: ModelStore | None = None,
        sessions: SessionFactory | None = None,
        maskers: Sequence[_MaskModel] = (),
    ):
        self._load(model, store, sessions, maskers)
        self.encoder = encoder or ArcFaceEncoder("w600k_r50", store, sessions)

    def register(self, image: np.ndarray, face: Face) -> NeuralSource:
        return NeuralSource(self.encoder.encode(image, face).reshape(1, -1).astype(np.float32), face)

    def _blend_mask(self, crop: np.ndarray, outputs: list[np.ndarray]) -> np.ndarray:
        mask = super()._blend_mask(crop, outputs)
        if len(outputs) > 1:
            own = np.asarray(outputs[1], np.float32).reshape(self.size, self.size)
            mask = np.minimum(mask, own.clip(0.0, 1.0))
        return mask


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
        clear = clear_of_hands(face.hands, matrix, self.size)  # not a hand "restored" into a face
        mask = self.mask if clear is None else np.minimum(self.mask, clear)
        return paste_back(frame, _to_image(output, -1.0, 1.0), matrix, mask, inner_mouth(face))
