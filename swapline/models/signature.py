"""Check that an ONNX file is the model its registry entry describes, before using it."""

from __future__ import annotations

from pathlib import Path

from swapline.errors import SwaplineError
from swapline.models.registry import ModelSpec, TensorSpec


def _matches(want: TensorSpec, name: str, shape: list) -> bool:
    if want.name is not None and want.name != name:
        return False
    if len(want.shape) != len(shape):
        return False
    for expected, found in zip(want.shape, shape, strict=True):
        if expected is not None and isinstance(found, int) and found != expected:
            return False
    return True


def _describe(items) -> str:
    parts = []
    for item in items:
        dims = ",".join(str(d) if isinstance(d, int) else "?" for d in item.shape)
        parts.append(f"{item.name}[{dims}]")
    return ", ".join(parts)


def check_signature(session, spec: ModelSpec, path: Path | str) -> None:
    """Raise a one-line error saying what was expected and what was found, if they differ."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    ok = len(inputs) == len(spec.inputs) and len(outputs) == len(spec.outputs)
    if ok:
        # inputs are matched by name where the registry names them, else in order
        named = {t.name: t for t in spec.inputs if t.name is not None}
        unnamed = [t for t in spec.inputs if t.name is None]
        for item in inputs:
            want = named.pop(item.name, None) or (unnamed.pop(0) if unnamed else None)
            ok = ok and want is not None and _matches(want, item.name, item.shape)
        ok = ok and not named
        for want, item in zip(spec.outputs, outputs, strict=True):
            ok = ok and _matches(want, item.name, item.shape)
    if not ok:
        found = f"{_describe(inputs)} -> {_describe(outputs)}"
        raise SwaplineError(f"{path}: not a {spec.name} model: expected {spec.signature()}, found {found}")
