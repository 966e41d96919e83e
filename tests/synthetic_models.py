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
