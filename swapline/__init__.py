"""swapline: low-latency face swapping; every output is labelled as AI-generated.

The Python API: `SwapSession` (models loaded once; register a source, compose frames),
`SwapSettings` and its parts, and `swap_image_file` for file-to-file stills.
"""

import logging

__version__ = "0.1.0"

# A library stays silent unless its user configures logging (the CLI does).
logging.getLogger("swapline").addHandler(logging.NullHandler())

_API = {
    "SwapSession": "swapline.session",
    "FrameResult": "swapline.session",
    "SwapSettings": "swapline.settings",
    "ModelChoices": "swapline.settings",
    "FaceSelection": "swapline.settings",
    "VideoOptions": "swapline.settings",
    "LiveOptions": "swapline.settings",
    "swap_image_file": "swapline.pipeline.image_job",
    "SwaplineError": "swapline.errors",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """Import on first use, so `swapline --version` and light imports stay fast."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'swapline' has no attribute {name!r}")
