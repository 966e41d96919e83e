"""The browser app's HTTP side: the page, and a small JSON API for photos, offers and switches.

Every /api call is checked: the token (when the server has one), the Origin (a page from
another site may not drive this one) and the content type (JSON or an image: types a
cross-site form cannot send without a preflight this server never answers). Photos stay in
memory; frames never touch the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path

from aiortc import RTCPeerConnection, RTCSessionDescription
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from swapline.errors import SwaplineError
from swapline.pipeline.realtime import build_stages
from swapline.session import SwapSession, source_notes
from swapline.settings import LiveOptions
from swapline.trust.label import CORE_TEXT, CORNERS
from swapline.web.conveyor import PeerConveyor, SwappedTrack, VirtualCameraOutput, pump
from swapline.web.ice import host_addresses, page_ice_servers, restrict_host_candidates, rtc_configuration
from swapline.web.settings import WebSettings
from swapline.web.uploads import SourcePhoto, SourcePhotos, UploadRefused, decode_upload
from swapline.web.variants import PAGE_FACE_MODES, PeerOptions, SessionVariants

log = logging.getLogger("swapline.web")

STATIC = Path(__file__).resolve().parent / "static"
MAX_JSON_BYTES = 64_000  # an SDP offer is a few kB
_REAP_EVERY_S = 1.0


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Peer:
    """One browser's connection: its RTCPeerConnection, its conveyor, what it chose."""

    def __init__(self, peer_id: str, pc: RTCPeerConnection, options: PeerOptions, photo: SourcePhoto):
        self.id = peer_id
        self.pc = pc
        self.options = options
        self.photo = photo
        self.conveyor: PeerConveyor | None = None
        self.pump_task: asyncio.Task | None = None
        self.changing = asyncio.Lock()  # one change of switches or photo at a time, in arrival order
        self.created = time.monotonic()

    def last_activity(self) -> float:
        arrived = self.conveyor.inbox.last_arrival if self.conveyor else 0.0
        return max(self.created, arrived)


class WebServer:
    """The app and its state: session variants, uploaded photos, peers (at most max_peers)."""

    def __init__(self, session: SwapSession, settings: WebSettings | None = None, stages=build_stages):
        """stages(session, registered, live_options): a peer's processing stages (the benchmark's floor
        run passes label-only ones)."""
        self.settings = (settings or WebSettings()).exposed()
        self.stages = stages
        self.variants = SessionVariants(session)
        self.photos = SourcePhotos(limit=max(8, 2 * self.settings.max_peers))
        self.live_options = LiveOptions(max_latency_ms=self.settings.max_latency_ms)
        self.peers: dict[str, Peer] = {}
        self.closed: OrderedDict[str, str] = OrderedDict()  # peer id -> why it was closed (for the page)
        self.vcam_owner: str | None = None
        self._decoding = asyncio.Semaphore(2)  # photos decoded at once (each may take max_upload_pixels x 3 bytes)
        self._token = self.settings.token.encode() if self.settings.token else None
        routes = [
            Route("/", self.page),
            Route("/api/config", self.config),
            Route("/api/source", self.source, methods=["POST"]),
            Route("/api/offer", self.offer, methods=["POST"]),
            Route("/api/options", self.change_options, methods=["POST"]),
            Route("/api/vcam", self.vcam, methods=["POST"]),
            Route("/api/stats", self.stats),
            Route("/api/close", self.close_peer, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
        middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=self._allowed_hosts())]
        self.app = Starlette(routes=routes, middleware=middleware, lifespan=self._lifespan)

    # -- guards ------------------------------------------------------------------------------------

    def _allowed_hosts(self) -> list[str]:
        """Host headers answered: stops a DNS-rebinding page from reaching a loopback server."""
        s = self.settings
        if s.host in ("0.0.0.0", "::") and not s.allowed_hosts:
            return ["*"]  # every interface: the token guards it
        return ["127.0.0.1", "localhost", "::1", s.host.strip("[]"), *s.allowed_hosts]

    def _guard(self, request: Request, content: str | None = None) -> None:
        if self._token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
            if not hmac.compare_digest(given, self._token):
                raise ApiError(401, "wrong or missing token: open the link the server printed, or type the token")
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise ApiError(403, f"requests from {origin} are not allowed")
        if content is not None and not request.headers.get("content-type", "").startswith(content):
            raise ApiError(415, f"expected {content}")

    async def _body(self, request: Request, limit: int) -> bytes:
        """The request body, refused as soon as it passes `limit` bytes (nothing larger is buffered)."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the upload is {int(declared) / 1e6:.1f} MB, over the {limit / 1e6:g} MB limit")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the upload is over the {limit / 1e6:g} MB limit")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _json(self, request: Request) -> dict:
        self._guard(request, "application/json")
        try:
            body = json.loads(await self._body(request, MAX_JSON_BYTES))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    def _peer(self, body: dict) -> Peer:
        peer = self.peers.get(body.get("peer"))  # type: ignore[arg-type]
        if peer is None:
            reason = self.closed.get(body.get("peer"), "no such peer")  # type: ignore[arg-type]
            raise ApiError(404, f"this camera connection is closed ({reason}); start again")
        return peer

    # -- routes ------------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        """The page itself holds no data and no controls that work without the API's token."""
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def config(self, request: Request) -> Response:
        return await self._answer(request, self._config)

    async def _config(self, request: Request) -> dict:
        self._guard(request)
        return {
            "label": CORE_TEXT,
            "faces": list(PAGE_FACE_MODES),
            "corners": list(CORNERS),
            "swappers": list(self.variants.swappers),
            "defaults": self.variants.defaults.to_json(),
            "ice_servers": page_ice_servers(self.settings.ice_servers),
            "max_peers": self.settings.max_peers,
            "max_upload_bytes": self.settings.max_upload_bytes,
        }

    async def source(self, request: Request) -> Response:
        return await self._answer(request, self._source)

    async def _source(self, request: Request) -> dict:
        self._guard(request, "image/")
        data = await self._body(request, self.settings.max_upload_bytes)
        async with self._decoding:
            pixels = await asyncio.to_thread(
                decode_upload, data, self.settings.max_upload_bytes, self.settings.max_upload_pixels
            )
            faces = await asyncio.to_thread(self.variants.base.find_faces, pixels)
        if not faces:
            raise ApiError(422, "no face found in this photo: choose one with a clear, frontal face")
        photo = SourcePhoto(pixels, tuple(float(v) for v in faces[0].box))  # type: ignore[arg-type]
        return photo.to_json(self.photos.add(photo))

    async def offer(self, request: Request) -> Response:
        return await self._answer(request, self._offer)

    async def _offer(self, request: Request) -> dict:
        body = await self._json(request)
        if len(self.peers) >= self.settings.max_peers:
            n = self.settings.max_peers
            raise ApiError(
                503, f"the server is busy: it swaps {n} camera{'s' if n > 1 else ''} at once; try again when one stops"
            )
        if body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
            raise ApiError(400, "expected an SDP offer")
        photo = self.photos.get(body.get("source"))
        options = self._options(body.get("options", {}), self.variants.defaults)
        peer_id = secrets.token_urlsafe(12)
        pc = RTCPeerConnection(rtc_configuration(self.settings.ice_servers))
        peer = self.peers[peer_id] = Peer(peer_id, pc, options, photo)  # counted from now: no race past max
        try:
            session = await asyncio.to_thread(self.variants.session, options)
            # the swapper's notes on the photo (glasses it will copy) go to the page, not the log
            registered = await asyncio.to_thread(session.register_source, photo.pixels, advise=False)
            loop = asyncio.get_running_loop()
            peer.conveyor = PeerConveyor(session, registered, loop, self.live_options, self.stages)

            @pc.on("track")
            def on_track(track) -> None:
                if track.kind == "video" and peer.pump_task is None:
                    peer.pump_task = asyncio.ensure_future(pump(track, peer.conveyor.inbox))
                    pc.addTrack(SwappedTrack(peer.conveyor.outbox))

            @pc.on("connectionstatechange")
            async def on_state() -> None:
                if pc.connectionState in ("failed", "closed"):
                    await self._close(peer_id, f"connection {pc.connectionState}")

            await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
            if peer.pump_task is None:
                raise ApiError(400, "the offer has no video track")
            await pc.setLocalDescription(await pc.createAnswer())
            peer.conveyor.start()
            peer.created = time.monotonic()  # the idle clock starts now, not before the models were ready
        except BaseException:
            await self._close(peer_id, "the offer failed")
            raise
        log.info("peer %s connected (%d of %d)", peer_id, len(self.peers), self.settings.max_peers)
        answer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "peer": peer_id}
        return {**answer, "notes": source_notes(registered)}

    def _options(self, raw: object, base: PeerOptions) -> PeerOptions:
        try:
            return PeerOptions.from_json(raw, self.variants.swappers, base)
        except SwaplineError as exc:
            raise ApiError(400, str(exc)) from None

    async def change_options(self, request: Request) -> Response:
        return await self._answer(request, self._change_options)

    async def _change_options(self, request: Request) -> dict:
        """New switches and/or a new photo: the peer's conveyor restarts with the matching session."""
        body = await self._json(request)
        peer = self._peer(body)
        async with peer.changing:
            options = self._options(body.get("options", {}), peer.options)
            photo = self.photos.get(body["source"]) if "source" in body else peer.photo
            if (options, photo) == (peer.options, peer.photo):
                return {"options": options.to_json()}
            session = await asyncio.to_thread(self.variants.session, options)
            registered = await asyncio.to_thread(session.register_source, photo.pixels, advise=False)
            if peer.conveyor is None or peer.id not in self.peers:
                raise ApiError(404, "this camera connection is closed; start again")
            peer.options, peer.photo = options, photo
            peer.conveyor.reconfigure(session, registered)
        return {"options": options.to_json(), "notes": source_notes(registered)}

    async def vcam(self, request: Request) -> Response:
        return await self._answer(request, self._vcam)

    async def _vcam(self, request: Request) -> dict:
        body = await self._json(request)
        peer = self._peer(body)
        conveyor = peer.conveyor
        if not body.get("on"):
            if self.vcam_owner == peer.id:
                await self._release_vcam(conveyor)
            return {"vcam": False}
        if self.vcam_owner not in (None, peer.id):
            raise ApiError(409, "the virtual camera is already fed by another browser")
        if conveyor.vcam is None:
            width, height = conveyor.inbox.size or (640, 480)
            self.vcam_owner = peer.id
            try:
                conveyor.vcam = await asyncio.to_thread(VirtualCameraOutput, width, height)
            except SwaplineError as exc:
                self.vcam_owner = None
                raise ApiError(409, str(exc)) from None
        return {"vcam": True}

    async def _release_vcam(self, conveyor: PeerConveyor | None) -> None:
        vcam = conveyor.vcam if conveyor else None
        if conveyor is not None:
            conveyor.vcam = None
        self.vcam_owner = None
        if vcam is not None:
            await asyncio.to_thread(vcam.close)

    async def stats(self, request: Request) -> Response:
        return await self._answer(request, self._stats)

    async def _stats(self, request: Request) -> dict:
        self._guard(request)
        peer = self._peer({"peer": request.query_params.get("peer")})
        conveyor = peer.conveyor
        live = conveyor.stats if conveyor else None
        summary = live.summary() if live else {}
        latency = summary.get("latency_ms", {})
        return {
            "state": peer.pc.connectionState,
            "received": conveyor.inbox.received if conveyor else 0,
            "frames_out": summary.get("frames_out", 0),
            "output_fps": summary.get("output_fps", 0.0),
            "dropped": summary.get("dropped", 0) + (conveyor.inbox.overwritten if conveyor else 0),
            "server_p50_ms": latency.get("p50_ms", 0.0),
            "server_p95_ms": latency.get("p95_ms", 0.0),
            "vcam": bool(conveyor and conveyor.vcam),
            "error": conveyor.error if conveyor else None,
            "options": peer.options.to_json(),
        }

    async def close_peer(self, request: Request) -> Response:
        return await self._answer(request, self._close_peer)

    async def _close_peer(self, request: Request) -> dict:
        body = await self._json(request)
        await self._close(str(body.get("peer")), "stopped on the page")
        return {"closed": True}

    async def _answer(self, request: Request, handler) -> Response:
        try:
            return JSONResponse(await handler(request))
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except UploadRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except SwaplineError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)

    # -- peers over time -----------------------------------------------------------------------------

    async def _close(self, peer_id: str, reason: str) -> None:
        peer = self.peers.pop(peer_id, None)
        if peer is None:
            return
        self.closed[peer_id] = reason
        while len(self.closed) > 64:
            self.closed.popitem(last=False)
        log.info("peer %s closed: %s", peer_id, reason)
        if self.vcam_owner == peer_id:
            await self._release_vcam(peer.conveyor)
        if peer.conveyor is not None:
            peer.conveyor.close()
        if peer.pump_task is not None:
            peer.pump_task.cancel()
        await peer.pc.close()
        if peer.conveyor is not None:
            await asyncio.to_thread(peer.conveyor.join)

    async def _reap(self) -> None:
        """Close peers whose connection failed, whose pipeline stopped, or that sent nothing for a while."""
        while True:
            await asyncio.sleep(_REAP_EVERY_S)
            now = time.monotonic()
            for peer in list(self.peers.values()):
                if peer.conveyor is not None and peer.conveyor.error:
                    await self._close(peer.id, f"processing failed: {peer.conveyor.error}")
                elif now - peer.last_activity() > self.settings.idle_timeout_s:
                    await self._close(peer.id, f"no frame for {self.settings.idle_timeout_s:g} s")

    @contextlib.asynccontextmanager
    async def _lifespan(self, app) -> AsyncIterator[None]:
        restrict_host_candidates(host_addresses(self.settings.host))
        reaper = asyncio.ensure_future(self._reap())
        try:
            yield
        finally:
            reaper.cancel()
            for peer_id in list(self.peers):
                await self._close(peer_id, "the server stopped")
