"""The page's switches (faces, mouth, swapper, label corner) as session variants, built once each.

Every variant is a SwapSession made from the server's base settings with those few fields
replaced: the models are shared (one ONNX session per file per process), so a variant costs
little, and every peer with the same switches shares one.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

from swapline.errors import SwaplineError
from swapline.session import SwapSession
from swapline.settings import SwapSettings
from swapline.trust.label import CORNERS

log = logging.getLogger("swapline.web")

PAGE_FACE_MODES = ("all", "largest")


@dataclass(frozen=True)
class PeerOptions:
    """What one browser chose on the page."""

    faces: str = "all"  # all | largest
    keep_mouth: bool = True  # the mesh swapper keeps the target's own mouth (talking looks right)
    swapper: str = "mesh"
    corner: str = "bottom-right"  # where the label goes (a copy goes opposite)

    @classmethod
    def from_json(cls, raw: object, allowed_swappers: tuple[str, ...], base: PeerOptions) -> PeerOptions:
        """Options from a request body, each checked against what this server offers."""
        if not isinstance(raw, dict):
            raise SwaplineError("options must be a JSON object")
        faces = raw.get("faces", base.faces)
        swapper = raw.get("swapper", base.swapper)
        corner = raw.get("corner", base.corner)
        keep_mouth = raw.get("keep_mouth", base.keep_mouth)
        if faces not in PAGE_FACE_MODES:
            raise SwaplineError(f"faces must be one of {', '.join(PAGE_FACE_MODES)}")
        if swapper not in allowed_swappers:
            raise SwaplineError(f"swapper must be one of {', '.join(allowed_swappers)} (installed here)")
        if corner not in CORNERS:
            raise SwaplineError(f"label corner must be one of {', '.join(CORNERS)}")
        if not isinstance(keep_mouth, bool):
            raise SwaplineError("keep_mouth must be true or false")
        return cls(faces=faces, keep_mouth=keep_mouth, swapper=swapper, corner=corner)

    def to_json(self) -> dict:
        return {"faces": self.faces, "keep_mouth": self.keep_mouth, "swapper": self.swapper, "corner": self.corner}


def installed_swappers(base: SwapSettings, store) -> tuple[str, ...]:
    """mesh, the server's own swapper, and every registry swapper already on disk with what it needs.

    The page never triggers a download: a model that is not here is not offered.
    """
    from swapline.models.registry import registry

    names = ["mesh"]
    if base.models.swapper not in names:
        names.append(base.models.swapper)
    for name, spec in registry().items():
        if spec.kind != "swapper" or name in names:
            continue
        if all(store.path(n).exists() for n in (name, *spec.needs)):
            names.append(name)
    return tuple(names)


class SessionVariants:
    """Sessions by PeerOptions, built on first use and kept (a few: least recently used go first)."""

    def __init__(self, base: SwapSession, limit: int = 6):
        self.base = base
        self.limit = limit
        self.defaults = PeerOptions(
            faces=base.settings.faces.mode if base.settings.faces.mode in PAGE_FACE_MODES else "all",
            keep_mouth=base.settings.swapper.keep_target_mouth,
            swapper=base.settings.models.swapper,
            corner=base.settings.label.corner,
        )
        self.swappers = installed_swappers(base.settings, base.store)
        self._sessions: OrderedDict[PeerOptions, SwapSession] = OrderedDict()
        if base.settings.faces.mode in PAGE_FACE_MODES:  # a reference-mode base is not what the page offers
            self._sessions[self.defaults] = base
        self._lock = threading.Lock()

    def settings_for(self, options: PeerOptions) -> SwapSettings:
        s = self.base.settings
        return replace(
            s,
            models=replace(s.models, swapper=options.swapper, offline=True),
            faces=replace(s.faces, mode=options.faces),
            swapper=replace(s.swapper, keep_target_mouth=options.keep_mouth),
            label=replace(s.label, corner=options.corner),
        )

    def session(self, options: PeerOptions, size: tuple[int, int] = (640, 480)) -> SwapSession:
        """The session for these options (blocking: call it off the event loop)."""
        with self._lock:
            session = self._sessions.get(options)
            if session is not None:
                self._sessions.move_to_end(options)
                return session
            log.info("building a session for %s", options)
            session = SwapSession(self.settings_for(options), sessions=self.base.sessions, store=self.base.store)
            session.warm_up(*size)
            self._sessions[options] = session
            while len(self._sessions) > self.limit:
                del self._sessions[next(k for k in self._sessions if k != self.defaults)]
            return session
