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
