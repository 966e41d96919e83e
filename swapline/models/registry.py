"""The model registry, read from registry.json: what each downloadable model is and expects.

Each model lists its sources (mirrors, tried in order). A file of the same name can differ between
hosts, so size and SHA-256 are pinned per source, where an independent publisher gave them. A
source without a digest falls back to trust on first use (see store.py); a digest seen at one
publisher only is kept as `published_once`: reported, not enforced.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from swapline.errors import SwaplineError

REGISTRY_FILE = Path(__file__).resolve().parent / "registry.json"
KINDS = ("detector", "recognizer", "swapper", "enhancer", "converter", "masker")


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
class Source:
    """One place a model file can be fetched from, with what that host's file must be."""

    url: str
    sha256: str | None = None  # pinned: a download with another digest is refused
    size: int | None = None  # bytes; pinned like the digest
    published_once: str | None = None  # a digest only one publisher gave: logged on mismatch, not enforced

    @property
    def pinned(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True)
class ModelSpec:
    """A registry model. `urls` are the sources in order; `sha256`/`size` pin every source the
    registry gives no per-source pin for (None: trust on first use)."""

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
    pins: tuple[Source, ...] = ()  # per-source size and digest, by URL
    extra_outputs: bool = False  # the file may have more outputs after the listed ones (auxiliary heads)
    fp16: str | None = None  # the registry name of this model with float16 weights, if any

    def signature(self) -> str:
        ins = ", ".join(t.describe() for t in self.inputs)
        outs = ", ".join(t.describe() for t in self.outputs) + (", ..." if self.extra_outputs else "")
        return f"{ins} -> {outs}"

    def source(self, url: str) -> Source:
        """What the file from `url` must be: its own pin, else the model-wide one."""
        for pin in self.pins:
            if pin.url == url:
                return pin
        return Source(url, self.sha256, self.size)

    @property
    def sources(self) -> tuple[Source, ...]:
        return tuple(self.source(url) for url in self.urls)

    @property
    def pinned_digests(self) -> frozenset[str]:
        return frozenset(s.sha256.lower() for s in self.sources if s.sha256)

    @property
    def fully_pinned(self) -> bool:
        """Every source has a digest: trust on first use never applies."""
        return bool(self.urls) and all(s.pinned for s in self.sources)

    def trust(self) -> str:
        """How a download is checked, in a few words (for `swapline models list`)."""
        pinned = [s for s in self.sources if s.pinned]
        if pinned:
            first = pinned[0]
            size = f", {first.size / 1e6:.0f} MB" if first.size else ""
            more = f" (+{len(pinned) - 1} mirror{'s' if len(pinned) > 2 else ''} pinned)" if len(pinned) > 1 else ""
            rest = "; others first use" if len(pinned) < len(self.sources) else ""
            return f"pinned sha256 {first.sha256[:8]}…{size}{more}{rest}"
        once = next((s.published_once for s in self.sources if s.published_once), None)
        return f"first use (sha256 {once[:8]}… published once)" if once else "first use"


def _tensor(raw: dict) -> TensorSpec:
    return TensorSpec(raw.get("name"), tuple(raw["shape"]))


def _sources(name: str, raw: dict) -> tuple[tuple[str, ...], tuple[Source, ...]]:
    if "sources" not in raw:  # the older form: one url list, one size and digest for all
        return tuple(raw["urls"]), ()
    pins = tuple(Source(s["url"], s.get("sha256"), s.get("size"), s.get("published_once")) for s in raw["sources"])
    if not pins:
        raise ValueError(f"model {name}: no sources")
    return tuple(p.url for p in pins), pins


def parse_spec(name: str, raw: dict) -> ModelSpec:
    norm = raw.get("normalisation")
    if raw["kind"] not in KINDS:
        raise ValueError(f"model {name}: unknown kind {raw['kind']!r}")
    urls, pins = _sources(name, raw)
    return ModelSpec(
        name=name,
        kind=raw["kind"],
        description=raw.get("description", ""),
        urls=urls,
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
        pins=pins,
        extra_outputs=bool(raw.get("extra_outputs", False)),
        fp16=raw.get("fp16"),
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


def variant(name: str, fp16: bool) -> str:
    """The registry name to load for `name`: its float16 twin when fp16 is wanted and one exists."""
    model = registry().get(name)
    return model.fp16 if fp16 and model is not None and model.fp16 else name
