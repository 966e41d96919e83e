from dataclasses import replace

import pytest

from swapline.errors import SwaplineError
from swapline.models import builtin_model_path
from swapline.runtime import RuntimeSettings, SessionFactory
from swapline.runtime.session import available_providers


def test_provider_order_falls_back_to_cpu():
    chosen = available_providers(("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"))
    assert chosen[-1] == "CPUExecutionProvider"
    assert available_providers(("NoSuchProvider",)) == ["CPUExecutionProvider"]


def test_one_session_per_model():
    factory = SessionFactory(RuntimeSettings())
    a = factory.load(builtin_model_path("face_landmark"))
    b = factory.load(str(builtin_model_path("face_landmark")))
    assert a is b
    assert a.get_session_options().intra_op_num_threads == 1


def test_bad_model_files_are_refused(tmp_path):
    factory = SessionFactory()
    with pytest.raises(SwaplineError, match="not found"):
        factory.load(tmp_path / "missing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(builtin_model_path("face_landmark").read_bytes()[:5000])
    with pytest.raises(SwaplineError, match="not a loadable ONNX model"):
        factory.load(broken)


def test_default_and_explicit_default_settings_share_one_factory():
    from swapline.runtime import shared_sessions

    assert shared_sessions() is shared_sessions(RuntimeSettings())


GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def names(providers):
    return [p[0] if isinstance(p, tuple) else p for p in providers]


def test_gpu_build_without_tensorrt_libraries_skips_tensorrt():
    from swapline.runtime.session import provider_list

    chosen = provider_list(RuntimeSettings(), have=GPU_BUILD, tensorrt_ok=False)
    assert names(chosen) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with_trt = provider_list(RuntimeSettings(), have=GPU_BUILD, tensorrt_ok=True)
    assert names(with_trt) == GPU_BUILD
    assert with_trt[0][1]["trt_fp16_enable"] is True and with_trt[0][1]["trt_engine_cache_enable"] is True
    assert names(provider_list(RuntimeSettings(), have=["CPUExecutionProvider"])) == ["CPUExecutionProvider"]


def test_tensorrt_is_probed_once_per_process_with_one_log_line(caplog):
    import logging

    from swapline.runtime.session import provider_list, tensorrt_loadable

    tensorrt_loadable.cache_clear()
    with caplog.at_level(logging.INFO, logger="swapline.runtime"):
        first = provider_list(RuntimeSettings(), have=GPU_BUILD)
        second = provider_list(RuntimeSettings(), have=GPU_BUILD)
    loadable = tensorrt_loadable()
    assert first == second
    assert ("TensorrtExecutionProvider" in names(first)) == loadable
    lines = [r.getMessage() for r in caplog.records if "TensorRT" in r.getMessage()]
    assert len(lines) == (0 if loadable else 1)
    if not loadable:  # this machine: no TensorRT; the line names the library that is missing
        assert "libnvinfer" in lines[0] and "\n" not in lines[0]
    # a CPU-only build never probes: TensorRT is not offered at all
    tensorrt_loadable.cache_clear()
    provider_list(RuntimeSettings(), have=["CPUExecutionProvider"])
    assert tensorrt_loadable.cache_info().currsize == 0


def test_cuda_options_carry_the_conv_algorithm_search():
    from swapline.runtime.session import provider_list

    default = provider_list(RuntimeSettings(), have=GPU_BUILD, tensorrt_ok=False)[0]
    assert default == ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "EXHAUSTIVE"})
    heuristic = RuntimeSettings(cudnn_conv_algo_search="HEURISTIC")
    assert provider_list(heuristic, have=GPU_BUILD, tensorrt_ok=False)[0][1]["cudnn_conv_algo_search"] == "HEURISTIC"
    with pytest.raises(SwaplineError, match="cudnn conv algo search must be one of"):
        RuntimeSettings(cudnn_conv_algo_search="FASTEST")


def test_models_whose_input_follows_the_photo_run_on_the_cpu_beside_a_gpu():
    """The still detector's any-size pass meets a new input shape with every photo size, which
    costs a GPU 0.6-2.6 s each time: beside a GPU it runs on the CPU; left on CUDA, without a
    timed convolution search."""
    gpu = SessionFactory(RuntimeSettings(), available=GPU_BUILD, tensorrt_ok=True)
    assert names(gpu._provider_list()) == GPU_BUILD
    assert gpu._provider_list(varying_shapes=True) == ["CPUExecutionProvider"]
    on_cuda = RuntimeSettings(varying_shapes_on_cpu=False)
    cuda = SessionFactory(on_cuda, available=GPU_BUILD, tensorrt_ok=False)
    assert cuda._provider_list()[0][1]["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    assert cuda._provider_list(varying_shapes=True)[0][1]["cudnn_conv_algo_search"] == "HEURISTIC"
    both = cuda._provider_list(nhwc=True, varying_shapes=True)[0][1]
    assert both == {"cudnn_conv_algo_search": "HEURISTIC", "prefer_nhwc": "1"}
    timed = replace(on_cuda, cudnn_search_varying_shapes="EXHAUSTIVE")
    kept = SessionFactory(timed, available=GPU_BUILD, tensorrt_ok=False)._provider_list(varying_shapes=True)
    assert kept[0][1]["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    with pytest.raises(SwaplineError, match="cudnn conv algo search must be one of"):
        RuntimeSettings(cudnn_search_varying_shapes="FASTEST")


def test_only_models_asking_for_nhwc_get_it_and_only_on_cuda():
    gpu = SessionFactory(RuntimeSettings(), available=GPU_BUILD, tensorrt_ok=False)
    assert gpu._provider_list(nhwc=True)[0][1]["prefer_nhwc"] == "1"
    assert "prefer_nhwc" not in gpu._provider_list()[0][1]  # the small detector and landmark models
    off = SessionFactory(RuntimeSettings(cuda_nhwc=False), available=GPU_BUILD, tensorrt_ok=False)
    assert "prefer_nhwc" not in off._provider_list(nhwc=True)[0][1]
    with_trt = SessionFactory(RuntimeSettings(), available=GPU_BUILD, tensorrt_ok=True)._provider_list(nhwc=True)
    assert "prefer_nhwc" not in with_trt[0][1] and with_trt[1][1]["prefer_nhwc"] == "1"
    cpu = SessionFactory(RuntimeSettings(providers=("CPUExecutionProvider",)))
    assert cpu._provider_list(nhwc=True) == cpu._provider_list()


def test_fp16_is_preferred_only_on_a_gpu_and_can_be_turned_off():
    cpu = SessionFactory(RuntimeSettings(providers=("CPUExecutionProvider",)))
    assert not cpu.gpu and not cpu.fp16
    gpu = SessionFactory(RuntimeSettings(), available=GPU_BUILD, tensorrt_ok=False)
    assert gpu.gpu and gpu.fp16 and names(gpu.providers)[0] == "CUDAExecutionProvider"
    off = SessionFactory(RuntimeSettings(prefer_fp16=False), available=GPU_BUILD, tensorrt_ok=False)
    assert off.gpu and not off.fp16


def test_the_cli_runtime_flags_reach_the_settings():
    from swapline.cli.commands import _settings
    from swapline.cli.parser import build_parser

    base = ["swap", "-s", "a.jpg", "-t", "b.jpg", "-o", "c.png"]
    runtime = _settings(build_parser().parse_args([*base, "--cuda-nchw", "--no-fp16", "--cudnn-search", "HEURISTIC"]))
    assert runtime.runtime.cuda_nhwc is False and runtime.runtime.prefer_fp16 is False
    assert runtime.runtime.cudnn_conv_algo_search == "HEURISTIC"
    default = _settings(build_parser().parse_args(base)).runtime
    assert default.cuda_nhwc and default.prefer_fp16 and default.cudnn_conv_algo_search == "EXHAUSTIVE"
