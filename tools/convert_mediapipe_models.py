"""Convert MediaPipe's face and hand models (TFLite, inside the mediapipe wheel) to ONNX.

Run once by a developer, never at run time:

    pip install mediapipe==0.10.21 tflite2onnx ai-edge-litert onnxruntime opencv-python-headless
    python tools/convert_mediapipe_models.py --check tests/data [--only palm_detection_lite ...]

Why patching is needed: tflite2onnx converts the short-range detector as it is, but the
face landmark model stores float16 weights behind DEQUANTIZE ops (its layout pass breaks on
them) and the full-range detector stores sparse float16 weights behind DENSIFY ops (which
tflite2onnx does not know). Both are constant folds: we replace each DENSIFY/DEQUANTIZE of a
constant with a dense float32 constant, then convert. Every converted model is compared with
the original under LiteRT on the check photos, and the max absolute difference is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

MEDIAPIPE_VERSION = "0.10.21"
MODELS = {
    "face_detection_short_range": "modules/face_detection/face_detection_short_range.tflite",
    "face_detection_full_range": "modules/face_detection/face_detection_full_range_sparse.tflite",
    "face_landmark": "modules/face_landmark/face_landmark.tflite",
    "palm_detection_lite": "modules/palm_detection/palm_detection_lite.tflite",
    "hand_landmark_lite": "modules/hand_landmark/hand_landmark_lite.tflite",
}
# Models whose input is [0, 1]; the face detectors take [-1, 1].
UNIT_RANGE = {"face_landmark", "palm_detection_lite", "hand_landmark_lite"}
# Shipped only as their any-input-size rewrite (tools/make_any_size_models.py): the palm detector
# runs at 128 px around a face (5.9 ms against 12.4 at its declared 192 on one core).
ANY_SIZE_ONLY = {"palm_detection_lite"}
REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "swapline" / "models"


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _opcode_names(model) -> list[str]:
    schema = _schema()
    by_value = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [by_value[max(oc.builtinCode, oc.deprecatedBuiltinCode)] for oc in model.operatorCodes]


def _tensor_constant(model, tensor) -> np.ndarray | None:
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    dtype = {0: np.float32, 1: np.float16, 2: np.int32, 9: np.int8, 3: np.uint8}[tensor.type]
    return np.frombuffer(bytes(bytearray(data)), dtype=dtype)


def _index_vector(vec) -> np.ndarray:
    return np.asarray(vec.values, dtype=np.int64)


def _densify(model, tensor) -> np.ndarray:
    """Dense values of a sparse constant whose only sparse dimension is the last (CSR)."""
    schema = _schema()
    sparsity = tensor.sparsity
    shape = [int(s) for s in tensor.shape]
    order = list(sparsity.traversalOrder)
    if order != list(range(len(shape))) or sparsity.blockMap is not None and len(sparsity.blockMap):
        raise NotImplementedError(f"sparsity layout not handled: order={order}")
    dims = sparsity.dimMetadata
    if any(d.format != schema.DimensionType.DENSE for d in dims[:-1]) or (
        dims[-1].format != schema.DimensionType.SPARSE_CSR
    ):
        raise NotImplementedError("only a CSR last dimension is handled")
    values = _tensor_constant(model, tensor)
    segments = _index_vector(dims[-1].arraySegments)
    columns = _index_vector(dims[-1].arrayIndices)
    rows = int(np.prod(shape[:-1]))
    dense = np.zeros((rows, shape[-1]), dtype=values.dtype)
    row_of_value = np.repeat(np.arange(rows), np.diff(segments))
    dense[row_of_value, columns] = values
    return dense.reshape(shape)


def _unshare_constants(model, graph) -> None:
    """Give every op its own copy of shared constant inputs.

    tflite2onnx rewrites some constants in place (PAD's paddings, RESIZE's sizes) once per
    consuming op, so a constant shared by two ops would be rewritten twice.
    """
    import copy

    seen: set[int] = set()
    for op in graph.operators:
        inputs = list(op.inputs)
        for slot, index in enumerate(inputs):
            if index < 0 or _tensor_constant(model, graph.tensors[index]) is None:
                continue
            if index in seen:
                twin = copy.deepcopy(graph.tensors[index])
                twin.name = (twin.name or b"const") + f"_copy{len(graph.tensors)}".encode()
                graph.tensors.append(twin)
                inputs[slot] = len(graph.tensors) - 1
            seen.add(inputs[slot])
        op.inputs = inputs


def fold_constant_ops(tflite_bytes: bytes) -> tuple[bytes, dict[str, int]]:
    """Replace DENSIFY and DEQUANTIZE of constants by float32 constants."""
    schema = _schema()
    import flatbuffers

    model = schema.ModelT.InitFromPackedBuf(tflite_bytes, 0)
    names = _opcode_names(model)
    graph = model.subgraphs[0]
    folded = {"DENSIFY": 0, "DEQUANTIZE": 0}
    kept = []
    for op in graph.operators:
        name = names[op.opcodeIndex]
        source = graph.tensors[op.inputs[0]]
        if name in folded and (source.sparsity is not None or _tensor_constant(model, source) is not None):
            if source.sparsity is not None:
                value = _densify(model, source)
            else:
                value = _tensor_constant(model, source).reshape([int(s) for s in source.shape])
            target = graph.tensors[op.outputs[0]]
            if name == "DEQUANTIZE":
                value = value.astype(np.float32)
                target.type = schema.TensorType.FLOAT32
            else:
                target.type = source.type
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(value).tobytes(), dtype=np.uint8)
            model.buffers.append(buffer)
            target.buffer = len(model.buffers) - 1
            folded[name] += 1
            continue
        kept.append(op)
    graph.operators = kept
    _unshare_constants(model, graph)
    builder = flatbuffers.Builder(len(tflite_bytes) * 4)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), folded


def _register_depth_to_space() -> None:
    """Teach tflite2onnx DEPTH_TO_SPACE (the full-range detector's upsampling)."""
    import tflite
    from tflite2onnx.layout import Layout
    from tflite2onnx.op.common import Operator, OpFactory

    if tflite.BuiltinOperator.DEPTH_TO_SPACE in OpFactory.registry:
        return

    class DepthToSpace(Operator):
        TypeMapping = {tflite.BuiltinOperator.DEPTH_TO_SPACE: "DepthToSpace"}

        def __init__(self, TFactory, index):
            super().__init__(TFactory, index)
            self.attrs["blocksize"] = 2
            self.attrs["mode"] = "DCR"  # TF's channel order: (row offset, col offset, channel)
            self.setInited()

        @property
        def type(self):
            return "DepthToSpace"

        def parse(self):
            self.parseInput(0, Layout("NHWC", "NCHW"))
            self.parseOutput(0, Layout("NHWC", "NCHW"))
            option = tflite.DepthToSpaceOptions()
            raw = self.tflite.BuiltinOptions()
            option.Init(raw.Bytes, raw.Pos)
            self.attrs["blocksize"] = option.BlockSize()
            self.setParsed()

        def propagatableTensors(self):
            return []

        def transform(self):
            pass

    OpFactory.register(DepthToSpace)


def _tflite2onnx(src: Path, dst: Path) -> None:
    from tflite2onnx import convert

    _register_depth_to_space()
    convert(str(src), str(dst))
    if not dst.exists():
        raise RuntimeError(f"tflite2onnx wrote nothing for {src.name}")


def _check_inputs(check_dir: Path | None, size: int) -> list[np.ndarray]:
    import cv2

    images = []
    if check_dir is not None:
        for path in sorted(check_dir.glob("*")):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                images.append(image)
    rng = np.random.default_rng(0)
    if not images:
        images = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8)]
    return images


def compare_with_litert(tflite_path: Path, onnx_path: Path, images: list[np.ndarray], scale: str) -> float:
    """Max absolute output difference between LiteRT on the original and ORT on the ONNX file."""
    import cv2
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    tin = interpreter.get_input_details()[0]
    size = int(tin["shape"][1])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for image in images:
        rgb = cv2.cvtColor(cv2.resize(image, (size, size)), cv2.COLOR_BGR2RGB).astype(np.float32)
        x = rgb / 127.5 - 1.0 if scale == "signed" else rgb / 255.0
        interpreter.set_tensor(tin["index"], x[None])
        interpreter.invoke()
        expected = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
        got = session.run(None, {session.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})
        ordered = sorted(expected.values(), key=lambda a: a.size, reverse=True)
        mine = sorted(got, key=lambda a: a.size, reverse=True)
        for want, have in zip(ordered, mine, strict=True):
            worst = max(worst, float(np.max(np.abs(want.reshape(-1) - have.reshape(-1)))))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=Path, help="folder of photos to compare outputs on")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS), help="convert these (default: all)")
    args = parser.parse_args()

    import mediapipe

    if mediapipe.__version__ != MEDIAPIPE_VERSION:
        print(f"warning: mediapipe {mediapipe.__version__}, expected {MEDIAPIPE_VERSION}")
    root = Path(mediapipe.__file__).parent
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "conversion.json"
    manifest = json.loads(manifest_path.read_text()) if args.only and manifest_path.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rel in MODELS.items():
            if args.only and name not in args.only:
                continue
            original = root / rel
            folded_bytes, folded = fold_constant_ops(original.read_bytes())
            patched = Path(tmp) / f"{name}.tflite"
            patched.write_bytes(folded_bytes)
            onnx_tmp = Path(tmp) / f"{name}.onnx"
            _tflite2onnx(patched, onnx_tmp)
            scale = "unit" if name in UNIT_RANGE else "signed"
            images = _check_inputs(args.check, 192)
            diff_patched = compare_with_litert(original, onnx_tmp, images, scale)
            target = args.out / f"{name}.onnx"
            if name in ANY_SIZE_ONLY:
                import onnx
                from make_any_size_models import any_input_size

                target = args.out / f"{name}_any_size.onnx"
                onnx.save(any_input_size(onnx.load(onnx_tmp)), target)
            else:
                shutil.copyfile(onnx_tmp, target)
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            manifest[name] = {
                "source": f"mediapipe=={MEDIAPIPE_VERSION}:{rel}",
                "folded_ops": folded,
                "max_abs_diff_vs_litert": diff_patched,
                "check_images": len(images),
                "sha256": digest,
            }
            print(
                f"{name}: folded {folded}, max |ONNX - LiteRT| = {diff_patched:.3g} "
                f"over {len(images)} images -> {target.relative_to(REPO)}"
            )
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
