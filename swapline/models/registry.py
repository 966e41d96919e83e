"""The model registry, read from registry.json: what each downloadable model is and expects."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from swapline.errors import SwaplineError

REGISTRY_FILE = Path(__file__).resolve().parent / "registry.json"
KINDS = ("detector", "recognizer", "swapper", "enhancer", "converter")


@dataclass(frozen=True)
class TensorSpec:
    name: str | None  # None: any name
    shape: tuple[int | None, ...]  # None: any size in that dimension

    def describe(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name or '*'}[{dims}]"


@dataclass(frozen=True)
class Normalisation:
    rgb: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float  # pixels are divided by this first (255 for [0, 1] inputs)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    description: str
    urls: tuple[str, ...]
    filename: str
    size: int | None
    sha256: str | None
    licence: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    template: str | None
    crop_size: int | None
    normalisation: Normalisation | None
    needs: tuple[str, ...]

    def signature(self) -> str:
        ins = ", ".join(t.describe() for t in self.inputs)
        outs = ", ".join(t.describe() for t in self.outputs)
        return f"{ins} -> {outs}"


def _tensor(raw: dict) -> TensorSpec:
    return TensorSpec(raw.get("name"), tuple(raw["shape"]))


def parse_spec(name: str, raw: dict) -> ModelSpec:
    norm = raw.get("normalisation")
    if raw["kind"] not in KINDS:
        raise ValueError(f"model {name}: unknown kind {raw['kind']!r}")
    return ModelSpec(
        name=name,
        kind=raw["kind"],
        description=raw.get("description", ""),
        urls=tuple(raw["urls"]),
        filename=raw["filename"],
        size=raw.get("size"),
        sha256=raw.get("sha256"),
        licence=raw["licence"],
        inputs=tuple(_tensor(t) for t in raw["inputs"]),
        outputs=tuple(_tensor(t) for t in raw["outputs"]),
        template=raw.get("template"),
        crop_size=raw.get("crop_size"),
        normalisation=None
        if norm is None
        else Normalisation(norm["rgb"], tuple(norm["mean"]), tuple(norm["std"]), norm.get("scale", 1.0)),
        needs=tuple(raw.get("needs", ())),
    )


@functools.cache
def registry(path: Path = REGISTRY_FILE) -> dict[str, ModelSpec]:
    raw = json.loads(Path(path).read_text())["models"]
    return {name: parse_spec(name, entry) for name, entry in raw.items()}


def spec(name: str) -> ModelSpec:
    known = registry()
    if name not in known:
        raise SwaplineError(f"unknown model {name!r}; known: {', '.join(sorted(known))}")
    return known[name]
