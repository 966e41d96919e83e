"""Tiny ONNX models with the real models' input/output names and shapes, for adapter tests.

They compute simple known functions (identity, a channel mean projection, constants) so the
adapters' pre- and post-processing can be checked against a numpy reference without weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _value(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def generator(path: Path, size: int, mode: str = "identity", emap: np.ndarray | None = None) -> Path:
    """inswapper/simswap signature: target [1,3,S,S] + source [1,512] -> output [1,3,S,S].

    identity: output = target (+ 0 x source); imagenet: output = target x std + mean (an identity
    in [0, 1] pixels for a model fed ImageNet-normalised input, like SimSwap); gray: 0.5 everywhere.
    The last initializer is a 512x512 matrix, like inswapper's emap.
    """
    zero = numpy_helper.from_array(np.zeros((1,), np.float32), "zero")
    half = numpy_helper.from_array(np.full((1,), 0.5, np.float32), "half")
    emap_init = numpy_helper.from_array((emap if emap is not None else np.eye(512)).astype(np.float32), "emap")
    nodes = [
        helper.make_node("ReduceSum", ["source"], ["source_sum"], keepdims=0),
        helper.make_node("Mul", ["source_sum", "zero"], ["nothing"]),
    ]
    extra = []
    if mode == "identity":
        nodes.append(helper.make_node("Add", ["target", "nothing"], ["output"]))
    elif mode == "imagenet":
        std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
        mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
        extra = [numpy_helper.from_array(std, "std"), numpy_helper.from_array(mean, "mean")]
        nodes += [
            helper.make_node("Mul", ["target", "std"], ["scaled"]),
            helper.make_node("Add", ["scaled", "mean"], ["shifted"]),
            helper.make_node("Add", ["shifted", "nothing"], ["output"]),
        ]
    else:
        nodes += [
            helper.make_node("Mul", ["target", "zero"], ["blank"]),
            helper.make_node("Add", ["blank", "half"], ["gray"]),
            helper.make_node("Add", ["gray", "nothing"], ["output"]),
        ]
    graph = helper.make_graph(
        nodes,
        "generator",
        [_value("target", [1, 3, size, size]), _value("source", [1, 512])],
        [_value("output", [1, 3, size, size])],
        [zero, half, *extra, emap_init],
    )
    return _save(graph, path)


def arcface(path: Path, weights: np.ndarray) -> Path:
    """[N,3,112,112] -> channel means @ weights (3x512) -> [N,512]."""
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["683"]),
        ],
        "arcface",
        [_value("input.1", ["N", 3, 112, 112])],
        [_value("683", ["N", 512])],
        [numpy_helper.from_array(weights.astype(np.float32), "w")],
    )
    return _save(graph, path)


def linear(path: Path, matrix: np.ndarray) -> Path:
    """[1,512] -> [1,512] (the SimSwap embedding converter's signature)."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "m"], ["output"])],
        "converter",
        [_value("input", [1, 512])],
        [_value("output", [1, 512])],
        [numpy_helper.from_array(matrix.astype(np.float32), "m")],
    )
    return _save(graph, path)


def image_identity(path: Path, size: int) -> Path:
    """[1,3,S,S] -> same (GFPGAN's signature)."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "enhancer",
        [_value("input", [1, 3, size, size])],
        [_value("output", [1, 3, size, size])],
    )
    return _save(graph, path)


def constant_outputs(path: Path, input_shape: list, outputs: list[np.ndarray], input_name: str = "input") -> Path:
    """Fixed outputs (a detector's raw answer), plus 0 x input so the input is used."""
    nodes, inits, values = [], [], []
    nodes.append(helper.make_node("ReduceSum", [input_name], ["input_sum"], keepdims=0))
    inits.append(numpy_helper.from_array(np.zeros((1,), np.float32), "zero"))
    nodes.append(helper.make_node("Mul", ["input_sum", "zero"], ["nothing"]))
    for index, array in enumerate(outputs):
        inits.append(numpy_helper.from_array(array.astype(np.float32), f"const{index}"))
        nodes.append(helper.make_node("Add", [f"const{index}", "nothing"], [f"out{index}"]))
        values.append(_value(f"out{index}", list(array.shape)))
    graph = helper.make_graph(nodes, "detector", [_value(input_name, input_shape)], values, inits)
    return _save(graph, path)


def hyperswap(path: Path, mode: str = "identity", mask: np.ndarray | None = None) -> Path:
    """hyperswap_1a_256's signature: source [1,512] + target [1,3,256,256] in [-1, 1] -> output
    [1,3,256,256] in [-1, 1] and mask [1,1,256,256]. identity: output = target; gray: output = 0
    (mid-gray) blended into the target by `mask`, as the real model blends by its own mask."""
    m = (np.ones((256, 256)) if mask is None else mask).astype(np.float32).reshape(1, 1, 256, 256)
    inits = [
        numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
        numpy_helper.from_array(m, "mask_const"),
        numpy_helper.from_array(1.0 - m, "keep_const"),
    ]
    nodes = [
        helper.make_node("ReduceSum", ["source"], ["source_sum"], keepdims=0),
        helper.make_node("Mul", ["source_sum", "zero"], ["nothing"]),
        helper.make_node("Add", ["mask_const", "nothing"], ["mask"]),
    ]
    if mode == "identity":
        nodes.append(helper.make_node("Add", ["target", "nothing"], ["output"]))
    else:
        nodes.append(helper.make_node("Mul", ["target", "keep_const"], ["kept"]))
        nodes.append(helper.make_node("Add", ["kept", "nothing"], ["output"]))
    graph = helper.make_graph(
        nodes,
        "hyperswap",
        [_value("source", [1, 512]), _value("target", [1, 3, 256, 256])],
        [_value("output", [1, 3, 256, 256]), _value("mask", [1, 1, 256, 256])],
        inits,
    )
    return _save(graph, path)


def occluder(path: Path, mask: np.ndarray) -> Path:
    """xseg_3's signature: input [1,256,256,3] (NHWC) -> a fixed [1,256,256,1] mask."""
    return constant_outputs(path, [1, 256, 256, 3], [mask.reshape(1, 256, 256, 1)], "input")


def parser(path: Path) -> Path:
    """bisenet_resnet_34's signature: input [1,3,512,512] -> three [1,19,512,512] logit maps (the
    main head and two auxiliary ones). Class 1 (skin) where the red channel is above mid, else
    class 0 (background): logit1 = R, logit0 = -R, the rest far below."""
    weights = np.zeros((19, 3, 1, 1), np.float32)
    weights[1, 0], weights[0, 0] = 1.0, -1.0
    bias = np.full((19,), -100.0, np.float32)
    bias[:2] = 0.0
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w", "b"], ["output"]),
            helper.make_node("Identity", ["output"], ["aux16"]),
            helper.make_node("Identity", ["output"], ["aux32"]),
        ],
        "parser",
        [_value("input", [1, 3, 512, 512])],
        [_value(name, [1, 19, 512, 512]) for name in ("output", "aux16", "aux32")],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    return _save(graph, path)


def scrfd(path: Path, seed: int = 0, score_bias: float = -3.0) -> Path:
    """SCRFD's layout with random weights: input.1 [1,3,H,W] -> per stride 8, 16, 32 (2 anchors a
    cell) scores [N,1], box distances [N,4] and keypoint offsets [N,10], in that output order.
    Each head is a 1x1 convolution of the stride-pooled image, so outputs depend on the pixels."""
    rng = np.random.default_rng(seed)
    nodes, inits, outputs = [], [], {"score": [], "bbox": [], "kps": []}
    for stride in (8, 16, 32):
        pooled = f"pool{stride}"
        nodes.append(
            helper.make_node(
                "AveragePool", ["input.1"], [pooled], kernel_shape=[stride, stride], strides=[stride, stride]
            )
        )
        for head, width in (("score", 1), ("bbox", 4), ("kps", 10)):
            name = f"{head}_{stride}"
            weights = rng.normal(scale=1.5 if head == "score" else 0.5, size=(2 * width, 3, 1, 1)).astype(np.float32)
            bias = np.full((2 * width,), score_bias if head == "score" else 0.0, np.float32)
            inits += [numpy_helper.from_array(weights, f"w_{name}"), numpy_helper.from_array(bias, f"b_{name}")]
            nodes.append(helper.make_node("Conv", [pooled, f"w_{name}", f"b_{name}"], [f"c_{name}"]))
            nodes.append(helper.make_node("Transpose", [f"c_{name}"], [f"t_{name}"], perm=[0, 2, 3, 1]))
            nodes.append(helper.make_node("Reshape", [f"t_{name}", f"shape{width}"], [f"r_{name}"]))
            last = f"r_{name}"
            if head == "score":
                nodes.append(helper.make_node("Sigmoid", [last], [name]))
            elif head == "bbox":  # distances are positive: |x| + 1 strides
                nodes.append(helper.make_node("Abs", [last], [f"a_{name}"]))
                nodes.append(helper.make_node("Add", [f"a_{name}", "one"], [name]))
            else:
                nodes.append(helper.make_node("Identity", [last], [name]))
            outputs[head].append(_value(name, ["N", width]))
    for width in (1, 4, 10):
        inits.append(numpy_helper.from_array(np.array([-1, width], np.int64), f"shape{width}"))
    inits.append(numpy_helper.from_array(np.ones((1,), np.float32), "one"))
    graph = helper.make_graph(
        nodes,
        "scrfd",
        [_value("input.1", [1, 3, "H", "W"])],
        outputs["score"] + outputs["bbox"] + outputs["kps"],
        inits,
    )
    return _save(graph, path)
