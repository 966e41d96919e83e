"""Stand-in models with the real models' signatures and about their compute, random weights.

For benchmarking the neural path without the real weights: the stand-in generator has
inswapper_128's inputs and outputs and about its cost (~174 GFLOPs per frame: nine 3x3
convolutions of 256 channels at 128x128). Its output is meaningless; its timing is not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def generator_flops(size: int = 128, channels: int = 256, blocks: int = 9) -> float:
    per_pixel = 2 * 9 * (3 * channels + blocks * channels * channels + channels * 3)
    return float(per_pixel * size * size)


def write_standin_generator(path: Path, size: int = 128, channels: int = 256, blocks: int = 9, seed: int = 0) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def weight(name, *shape):
        fan_in = int(np.prod(shape[1:]))
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), name)

    inits = [weight("w_in", channels, 3, 3, 3), weight("w_style", 512, channels)]
    nodes = [
        helper.make_node("Conv", ["target", "w_in"], ["x0"], pads=[1, 1, 1, 1]),
        helper.make_node("MatMul", ["source", "w_style"], ["style"]),
        helper.make_node("Unsqueeze", ["style", "axes23"], ["style4"]),
        helper.make_node("Add", ["x0", "style4"], ["h0"]),
    ]
    inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes23"))
    current = "h0"
    for index in range(blocks):
        inits.append(weight(f"w{index}", channels, channels, 3, 3))
        nodes.append(helper.make_node("Conv", [current, f"w{index}"], [f"c{index}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{index}"], [f"r{index}"]))
        current = f"r{index}"
    inits.append(weight("w_out", 3, channels, 3, 3))
    nodes.append(helper.make_node("Conv", [current, "w_out"], ["logits"], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Sigmoid", ["logits"], ["output"]))
    inits.append(numpy_helper.from_array(rng.standard_normal((512, 512)).astype(np.float32), "emap"))  # last
    graph = helper.make_graph(
        nodes,
        "standin_inswapper_128",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, size, size]),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def to_fp16(source: Path, path: Path) -> Path:
    """The stand-in's float16 twin, like the registry's *_fp16 files: float16 weights and compute,
    float32 inputs and outputs (Casts at both ends), the emap left in float32 for the latent."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and init.name != "emap":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in graph.node:  # consumers of the graph inputs read the cast copies
        node.input[:] = [f"{n}_fp16" if n in ("target", "source") else n for n in node.input]
        node.output[:] = ["output_fp16" if n == "output" else n for n in node.output]
    for name in ("source", "target"):
        graph.node.insert(0, helper.make_node("Cast", [name], [f"{name}_fp16"], to=TensorProto.FLOAT16))
    graph.node.append(helper.make_node("Cast", ["output_fp16"], ["output"], to=TensorProto.FLOAT))
    onnx.save(model, str(path))
    return path


def write_standin_arcface(path: Path, seed: int = 1) -> Path:
    """ArcFace's signature ([N,3,112,112] -> [N,512]); tiny, since it runs once per source."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["683"]),
        ],
        "standin_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])],
        [numpy_helper.from_array(rng.standard_normal((3, 512)).astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
