"""Batch jobs: many videos and stills, cut into tasks that run on Ray (or a local process pool).

Videos are cut into chunks of whole segments, so their outputs are exactly what `swapline swap`
makes; see job.py for how the driver keeps finished work across crashes. Names are imported on
first use, so the CLI can read the options without loading the engine.
"""

from __future__ import annotations

import importlib

RUNNERS = ("auto", "ray", "pool")  # where tasks run: Ray when installed, else a local pool | Ray | the pool

_EXPORTS = {
    "BatchJob": "swapline.batch.job",
    "BatchProgress": "swapline.batch.job",
    "BatchReport": "swapline.batch.job",
    "InputReport": "swapline.batch.job",
    "run_batch": "swapline.batch.job",
    "BatchOptions": "swapline.batch.options",
    "ray_available": "swapline.batch.runners",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'swapline.batch' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
