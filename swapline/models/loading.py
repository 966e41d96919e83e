"""Load a registry model (or a local file standing in for one), with its signature checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swapline.models.registry import ModelSpec, spec
from swapline.models.signature import check_signature
from swapline.models.store import ModelStore
from swapline.runtime import SessionFactory, shared_sessions
from swapline.runtime.tensors import planar


class OnnxModel:
    """A session for a model of a known kind; `model` is a registry name or an .onnx path."""

    def __init__(
        self,
        model: str | Path,
        expected: str,
        store: ModelStore | None = None,
        sessions: SessionFactory | None = None,
        nhwc: bool = False,
    ):
        store = store or ModelStore()
        path, found = store.resolve(model)
        self.spec: ModelSpec = found or spec(expected)
        self.path = path
        self.session = (sessions or shared_sessions()).load(path, nhwc=nhwc)
        check_signature(self.session, self.spec, path)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def to_tensor(self, crop: np.ndarray) -> np.ndarray:
        """BGR uint8 crop -> 1x3xHxW float32, normalised as the registry says."""
        norm = self.spec.normalisation
        if crop.dtype == np.uint8 and crop.ndim == 3:
            std = np.asarray(norm.std, np.float32)
            return planar(crop, 1.0 / (norm.scale * std), -np.asarray(norm.mean, np.float32) / std, rgb=norm.rgb)
        pixels = crop[:, :, ::-1] if norm.rgb else crop
        x = pixels.astype(np.float32) / norm.scale
        x = (x - np.asarray(norm.mean, np.float32)) / np.asarray(norm.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def last_initializer(self) -> np.ndarray:
        """The graph's last initializer (inswapper keeps its embedding map "emap" there)."""
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(str(self.path), load_external_data=False).graph
        return numpy_helper.to_array(graph.initializer[-1])
