"""Machine-readable provenance: a small JSON record stored in each output's metadata."""

from __future__ import annotations

import datetime as _dt

from swapline import __version__

PROVENANCE_KEY = "swapline:provenance"


def provenance_record(method: str, label_text: str, **extra: object) -> dict:
    """What an auditor needs: that this is synthetic, what made it, and when."""
    return {
        "ai_generated": True,
        "generator": f"swapline {__version__}",
        "method": method,
        "visible_label": label_text,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }
