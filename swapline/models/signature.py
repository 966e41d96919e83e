"""Check that an ONNX file is the model its registry entry describes, before using it; and tell
which registry model a file is, from its inputs and outputs alone (for .onnx paths)."""

from __future__ import annotations

from pathlib import Path

from swapline.errors import SwaplineError
from swapline.models.registry import ModelSpec, TensorSpec, registry


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


def signature_matches(session, spec: ModelSpec) -> bool:
    """Inputs matched by name where the registry names them, else in order; outputs in order."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != len(spec.inputs):
        return False
    if len(outputs) != len(spec.outputs) and not (spec.extra_outputs and len(outputs) > len(spec.outputs)):
        return False
    named = {t.name: t for t in spec.inputs if t.name is not None}
    unnamed = [t for t in spec.inputs if t.name is None]
    for item in inputs:
        want = named.pop(item.name, None) or (unnamed.pop(0) if unnamed else None)
        if want is None or not _matches(want, item.name, item.shape):
            return False
    if named:
        return False
    return all(_matches(want, item.name, item.shape) for want, item in zip(spec.outputs, outputs, strict=False))


def check_signature(session, spec: ModelSpec, path: Path | str) -> None:
    """Raise a one-line error saying what was expected and what was found, if they differ."""
    if not signature_matches(session, spec):
        found = f"{_describe(session.get_inputs())} -> {_describe(session.get_outputs())}"
        raise SwaplineError(f"{path}: not a {spec.name} model: expected {spec.signature()}, found {found}")


def identify(session, kind: str, models: dict[str, ModelSpec] | None = None) -> ModelSpec | None:
    """The first registry model of this kind whose signature the session has (None: no such model).

    Routes a local .onnx file to its adapter: a 128 px target+source generator is an inswapper, a
    256 px one with one output SimSwap, with a mask output HyperSwap; 9 outputs make SCRFD.
    """
    for spec in (models or registry()).values():
        if spec.kind == kind and signature_matches(session, spec):
            return spec
    return None
