"""Write the any-input-size twins of the built-in BlazeFace models (swapline/models/*_any_size.onnx).

MediaPipe's converted detectors declare one input size (192 x 192, 128 x 128), but their graphs are
convolutions, element-wise ops, upsamplings and reshapes to (1, -1, k): only the declared shapes
and the upsamplings' constant output sizes pin the size. With those replaced (symbolic height and
width; each Resize's sizes turned into the equivalent scales), one pass covers a whole photo at a
chosen resolution instead of many overlapping square tiles (the stills' fine pass). At the
declared size the rewritten model gives the shipped model's outputs.

Run once by a developer after the detectors change, never at run time (a job would otherwise
import onnx, ~12 MB a process, to rewrite them):

    python tools/make_any_size_models.py

tests/test_detection.py checks that the committed files are exactly what this writes.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from swapline.models import builtin_model_path

DETECTORS = ("face_detection_short_range", "face_detection_full_range")


def any_input_size(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of model whose first input takes any height and width (NCHW, batch kept).

    Raises ValueError for a graph this rewrite does not understand (a Resize with computed sizes).
    """
    inferred = shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*inferred.graph.value_info, *inferred.graph.input)
    }
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    constants = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or not node.input[3]:
            continue
        if node.input[3] not in constants or not shapes.get(node.input[0]):
            raise ValueError(f"Resize {node.name!r}: output size is computed, not constant")
        sizes = numpy_helper.to_array(constants[node.input[3]]).astype(np.float32)
        scales = sizes / np.array(shapes[node.input[0]], np.float32)
        name = f"{node.input[3]}__as_scales"
        graph.initializer.append(numpy_helper.from_array(scales, name))
        node.input[2] = name
        del node.input[3]
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in graph.output:  # their sizes follow the input's now
        output.type.tensor_type.ClearField("shape")
    del graph.value_info[:]
    used = {i for node in graph.node for i in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return out


def any_size_bytes(name: str) -> bytes:
    return any_input_size(onnx.load(builtin_model_path(name))).SerializeToString()


def main() -> None:
    for name in DETECTORS:
        path = builtin_model_path(f"{name}_any_size")
        path.write_bytes(any_size_bytes(name))
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
