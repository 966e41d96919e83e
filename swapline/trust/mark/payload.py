"""What the mark says: 48 bits (tool, version, job id), protected by a Reed-Solomon code.

The code is reedsolo's Reed-Solomon over GF(2^5): 10 data symbols (the 48 payload bits and two
zero bits) and 10 check symbols, 100 bits in all. Small symbols suit the scattered bit errors
this channel makes. The decoder also uses how sure each bit is: it retries with the least
reliable symbols declared erased, and accepts a codeword only if it lies within RADIUS bits of
what was read, so noise almost never yields a payload (measured in BENCHMARKS.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import reedsolo

from swapline import __version__
from swapline.errors import SwaplineError

TOOLS = {"swapline": 1}  # tool name -> code in the mark; codes are never reused
PAYLOAD_BYTES = 6
SYMBOL_BITS = 5
DATA_SYMBOLS = 10  # 50 bits: the payload and two bits that must read as zero
CHECK_SYMBOLS = 10
CODE_BITS = (DATA_SYMBOLS + CHECK_SYMBOLS) * SYMBOL_BITS
RADIUS = 8  # most bit errors accepted between what was read and the corrected codeword
ERASURES = (0, 2, 4, 6, 8)  # least reliable symbols declared erased, tried in turn

_WEIGHTS = 1 << np.arange(SYMBOL_BITS - 1, -1, -1)
# x^5 + x^2 + 1, generator 2, first root 0: pinned, so a later reedsolo cannot pick another field
_CODEC = reedsolo.RSCodec(CHECK_SYMBOLS, nsize=2**SYMBOL_BITS - 1, fcr=0, prim=0x25, generator=2, c_exp=SYMBOL_BITS)
_CODEC_LOCK = threading.Lock()  # reedsolo swaps module-level tables on every call


def _major_minor(version: str) -> tuple[int, int]:
    parts = version.split(".")
    try:
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise SwaplineError(f"mark version must look like 0.1 or 0.1.0, not {version!r}") from None
    if not (0 <= major < 8 and 0 <= minor < 32):
        raise SwaplineError(f"mark version {version!r} does not fit (major < 8, minor < 32)")
    return major, minor


def current_version() -> str:
    """This swapline's major.minor, as a mark records it."""
    major, minor = _major_minor(__version__)
    return f"{major}.{minor}"


def _tool_code(tool: str) -> int:
    if tool in TOOLS:
        return TOOLS[tool]
    if tool.startswith("tool#") and tool[5:].isdigit() and 0 < int(tool[5:]) < 256:
        return int(tool[5:])
    raise SwaplineError(f"mark tool must be one of {', '.join(TOOLS)} (or tool#N), not {tool!r}")


@dataclass(frozen=True)
class Payload:
    """What every mark carries: which tool (and version) made the output, and which job."""

    tool: str = "swapline"
    version: str = current_version()
    job_id: int = 0  # 32 bits: a job number, or the job's start time in Unix seconds

    def __post_init__(self) -> None:
        _tool_code(self.tool)
        major, minor = _major_minor(self.version)
        object.__setattr__(self, "version", f"{major}.{minor}")  # the mark keeps major.minor only
        if not 0 <= self.job_id < 2**32:
            raise SwaplineError(f"mark job id must fit in 32 bits, not {self.job_id}")

    def to_bytes(self) -> bytes:
        major, minor = _major_minor(self.version)
        return bytes([_tool_code(self.tool), major << 5 | minor]) + self.job_id.to_bytes(4, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> Payload:
        if len(data) != PAYLOAD_BYTES or data[0] == 0:
            raise SwaplineError("not a mark payload")
        names = {code: name for name, code in TOOLS.items()}
        tool = names.get(data[0], f"tool#{data[0]}")
        return cls(tool, f"{data[1] >> 5}.{data[1] & 31}", int.from_bytes(data[2:], "big"))


def _symbols(bits: np.ndarray) -> list[int]:
    return (bits.reshape(-1, SYMBOL_BITS) @ _WEIGHTS).tolist()


def _bits(symbols) -> np.ndarray:
    values = np.asarray(list(symbols), dtype=np.int64)
    return ((values[:, None] >> np.arange(SYMBOL_BITS - 1, -1, -1)) & 1).astype(np.uint8).ravel()


def encode(payload: Payload) -> np.ndarray:
    """The CODE_BITS bits (0/1) that the pattern carries."""
    bits = np.unpackbits(np.frombuffer(payload.to_bytes(), np.uint8))
    data = _symbols(np.concatenate([bits, np.zeros(DATA_SYMBOLS * SYMBOL_BITS - bits.size, np.uint8)]))
    with _CODEC_LOCK:
        codeword = _CODEC.encode(data)
    return _bits(codeword)


def decode(soft: np.ndarray, erasures: tuple[int, ...] = ERASURES, radius: int = RADIUS) -> tuple[Payload, int] | None:
    """The payload and how many bits were corrected, from soft values (> 0 reads as 1); None if unreadable."""
    hard = (soft > 0).astype(np.uint8)
    received = _symbols(hard)
    reliability = np.abs(soft).reshape(-1, SYMBOL_BITS).min(axis=1)
    order = np.argsort(reliability, kind="stable").tolist()
    best: tuple[int, bytes] | None = None
    for erased in erasures:
        try:
            with _CODEC_LOCK:
                _, codeword, _ = _CODEC.decode(list(received), erase_pos=order[:erased] or None)
        except reedsolo.ReedSolomonError:
            continue
        bits = _bits(codeword)
        distance = int(np.count_nonzero(bits != hard))
        data = bits[: DATA_SYMBOLS * SYMBOL_BITS]
        if distance > radius or data[PAYLOAD_BYTES * 8 :].any() or (best and distance >= best[0]):
            continue
        best = (distance, np.packbits(data[: PAYLOAD_BYTES * 8]).tobytes())
        if distance == 0:
            break
    if best is None:
        return None
    try:
        return Payload.from_bytes(best[1]), best[0]
    except SwaplineError:
        return None  # a codeword, but not one a tool wrote (unknown layout)
