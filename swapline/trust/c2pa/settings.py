"""Where Content Credentials come from: the user's certificate, or this installation's local CA.

Only plain data lives here (no SDK import), so `SwapSettings` and the CLI can hold these settings
on an installation without the 'c2pa' extra.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from swapline.errors import SwaplineError

# Generated media, as IPTC names it: what every swapline output is.
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MISSING_EXTRA = "C2PA signing needs the 'c2pa' extra: pip install 'swapline[c2pa]'"


@dataclass(frozen=True)
class CredentialSettings:
    """How outputs are signed.

    `cert_chain` (PEM: signing certificate first, then its CAs) and `private_key` (unencrypted PEM)
    come as a pair; without them a local CA made on first use in `local_ca_dir` signs. `tsa_url` is
    an RFC 3161 time-stamp authority (off by default: signing stays offline). `thumbnails` is off
    because ingredient thumbnails would carry the unswapped target and the source face inside
    every output.
    """

    cert_chain: Path | None = None
    private_key: Path | None = None
    tsa_url: str | None = None
    local_ca_dir: Path | None = None
    thumbnails: bool = False

    def __post_init__(self) -> None:
        if (self.cert_chain is None) != (self.private_key is None):
            raise SwaplineError("C2PA signing needs both a certificate chain and its private key, or neither")

    @property
    def user_certificate(self) -> bool:
        return self.cert_chain is not None


def default_local_ca_dir() -> Path:
    """$SWAPLINE_HOME/c2pa when set, else the user's config folder: keys are not cache."""
    env = os.environ.get("SWAPLINE_HOME")
    if env:
        return Path(env).expanduser() / "c2pa"
    import platformdirs

    return Path(platformdirs.user_config_dir("swapline")) / "c2pa"
