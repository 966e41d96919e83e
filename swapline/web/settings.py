"""What the browser app's server allows: where it listens, who may use it, how much it takes.

Safe by default: it listens on loopback only. Listening anywhere else needs a token (made up
and printed at start when none is given) and HTTPS, or an explicit `insecure`, because the page
sends a camera feed and a face photo.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from swapline.errors import SwaplineError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (what no other machine can reach)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # checked on every API call when set (always set off loopback)
    insecure: bool = False  # allow plain HTTP off loopback
    cert: Path | None = None  # HTTPS certificate chain (PEM)...
    key: Path | None = None  # ...and its private key
    max_peers: int = 2  # cameras served at once; one more is refused with HTTP 503
    ice_servers: tuple[str, ...] = ()  # stun:/turn: URLs; none by default (loopback and LAN need none)
    idle_timeout_s: float = 10.0  # a peer that sends no frame this long is closed
    max_upload_bytes: int = 20_000_000  # a source photo's file size...
    max_upload_pixels: int = 40_000_000  # ...and its pixel count, checked from the header before decoding
    max_latency_ms: float = 200.0  # frames older than this at any hand-off are dropped
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)  # Host headers accepted (besides the bound one)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SwaplineError(f"port must be between 0 and 65535, not {self.port}")
        if self.max_peers < 1:
            raise SwaplineError(f"max peers must be at least 1, not {self.max_peers}")
        if (self.cert is None) != (self.key is None):
            raise SwaplineError("HTTPS needs both --cert and --key")
        if self.token is not None and len(self.token) < 8:
            raise SwaplineError("the token must be at least 8 characters long")
        if self.idle_timeout_s <= 0 or self.max_upload_bytes <= 0 or self.max_upload_pixels <= 0:
            raise SwaplineError("timeouts and upload limits must be positive")
        for url in self.ice_servers:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise SwaplineError(f"ICE server {url!r}: must start with stun:, turn: or turns:")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def https(self) -> bool:
        return self.cert is not None

    def url(self, port: int | None = None) -> str:
        """Where the page is (`port`: the one actually bound, when port 0 let the system choose)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.https else 'http'}://{host}:{self.port if port is None else port}/"

    def exposed(self) -> WebSettings:
        """These settings, checked for listening where others can reach: a token (made up when
        none was given) and HTTPS unless `insecure`. Loopback settings come back unchanged."""
        if self.loopback:
            return self
        if not self.https and not self.insecure:
            raise SwaplineError(
                f"listening on {self.host} sends camera frames over the network: give --cert and --key "
                "for HTTPS (browsers only allow the camera on https:// or localhost), or --insecure"
            )
        return self if self.token else replace(self, token=secrets.token_urlsafe(18))
