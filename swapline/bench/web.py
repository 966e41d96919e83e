"""`swapline bench web`: the browser app measured from real headless Chromium peers.

Each browser plays a clip as its camera (Chromium's fake capture device reads a .y4m file,
written here without ffmpeg), uploads the source photo and starts, exactly as a person would.
The page itself measures glass-to-glass latency (a frame id stamped into each sent frame and
read back from the returned one) and fps; the server adds its own processing figures. Runs
are on loopback only, at most a few browsers and a minute each; browsers beyond the server's
max peers are refused, and the report says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from swapline.bench.report import make_table
from swapline.errors import SwaplineError

Y4M_MAX_SECONDS = 5.0  # the fake camera loops the file: a few seconds of motion are enough
CONNECT_TIMEOUT_S = 40.0
WARM_S = 2.0  # after the first matched frame, before measuring (encoder ramp-up, first variant)


def write_y4m(frames, path: Path, fps: float = 30.0) -> Path:
    """Frames (BGR) as a YUV4MPEG2 file, the fake-camera format Chromium reads (4:2:0)."""
    path = Path(path)
    with open(path, "wb") as out:
        header = False
        for frame in frames:
            height, width = frame.shape[:2]
            if width % 2 or height % 2:
                raise SwaplineError(f"y4m: 4:2:0 needs even frame sizes, not {width}x{height}")
            if not header:
                out.write(f"YUV4MPEG2 W{width} H{height} F{round(fps * 1000)}:1000 Ip A1:1 C420jpeg\n".encode())
                header = True
            out.write(b"FRAME\n")
            out.write(np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)).tobytes())
    if not header:
        raise SwaplineError("y4m: no frames to write")
    return path


def clip_to_y4m(clip: Path, out: Path, max_seconds: float = Y4M_MAX_SECONDS) -> tuple[Path, float]:
    """The first seconds of a video (e.g. from `swapline bench clip`) as a fake camera file; returns (path, fps)."""
    import av

    from swapline.io.images import check_input_file

    check_input_file(Path(clip), "a video")
    try:
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 30.0)
            limit = int(round(fps * max_seconds))
            frames = (
                f.to_ndarray(format="bgr24") for _, f in zip(range(limit), container.decode(stream), strict=False)
            )
            return write_y4m(frames, out, fps), fps
    except av.error.FFmpegError as exc:
        raise SwaplineError(f"{clip}: not a readable video ({exc})") from None


def find_chromium(explicit: Path | None = None) -> str:
    """The Chromium to drive (the system's: playwright's own browser downloads are not needed)."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise SwaplineError(f"{explicit}: no such Chromium binary")
        return str(explicit)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise SwaplineError("no Chromium found: install it (Debian: apt-get install chromium) or give --chromium")


def chromium_args(y4m: Path) -> list[str]:
    """A headless Chromium with a file as its camera, WebRTC allowed on loopback, and no lookups
    of any host name (nothing here may wait on DNS)."""
    return [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns,OptimizationHints,MediaRouter",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--autoplay-policy=no-user-gesture-required",
    ]


def open_page(browser, url: str, photo: Path, viewport=(1340, 640)):
    """A fresh browser context on the app, with the source photo chosen (not yet started)."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("document.querySelector('#swapper').options.length > 0 || window.swaplineStats.error")
    page.set_input_files("#photo", str(photo))
    page.wait_for_function("window.swaplineStats.sourceReady || window.swaplineStats.error", timeout=30_000)
    return page


def page_stats(page) -> dict:
    return page.evaluate("JSON.parse(JSON.stringify(window.swaplineStats))")


def wait_started(page, timeout_s: float = CONNECT_TIMEOUT_S) -> dict:
    """Until the first stamped frame came back, or the page shows an error (a refusal)."""
    page.wait_for_function("window.swaplineStats.matched > 0 || window.swaplineStats.error", timeout=timeout_s * 1000)
    return page_stats(page)


class LabelOnlyStage:
    """The floor: frames go out and back through the same conveyor, labelled, with no face work."""

    name = "label"

    def __init__(self, session):
        self.session = session

    def process(self, frame):
        self.session.compose(frame.image, [], None, timings=frame.timings)
        return frame


def label_only_stages(session, registered, options) -> list:
    return [LabelOnlyStage(session)]


def _peer_row(stats: dict, elapsed_s: float) -> dict:
    """One browser's figures over the measured window (fps: frames shown back / window)."""
    server = stats.get("server") or {}
    browser = stats.get("browser") or {}
    return {
        "refused": stats.get("error"),
        "fps": round(stats.get("returned", 0) / elapsed_s, 2),
        "p50_ms": round(stats.get("p50", 0.0), 1),
        "p95_ms": round(stats.get("p95", 0.0), 1),
        "matched": stats.get("matched", 0),
        "unread": stats.get("unmatched", 0),
        "server_fps": server.get("output_fps", 0.0),
        "server_p95_ms": server.get("server_p95_ms", 0.0),
        "server_dropped": server.get("dropped", 0),
        "jitter_buffer_ms": round(browser.get("jitterMs", 0.0), 1),
    }


def _run(session, y4m: Path, photo: Path, peers: int, seconds: float, max_peers: int, stages, chromium, shot):
    from playwright.sync_api import sync_playwright

    from swapline.web.app import WebServer
    from swapline.web.server import RunningServer
    from swapline.web.settings import WebSettings

    web = WebServer(session, WebSettings(port=0, max_peers=max_peers), stages=stages)
    with RunningServer(web) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=chromium_args(y4m))
        try:
            pages = [open_page(browser, server.url, photo) for _ in range(peers)]
            for page in pages:
                page.click("#start")
                wait_started(page)  # one at a time: the refusal (if any) is the last one's
            time.sleep(WARM_S)
            for page in pages:
                page.evaluate("window.swaplineResetStats()")
            started = time.monotonic()
            time.sleep(seconds)
            rows = [_peer_row(page_stats(page), time.monotonic() - started) for page in pages]
            if shot is not None:
                pages[0].screenshot(path=str(shot))
        finally:
            browser.close()
    return rows


def run_web_bench(
    source: Path,
    clip: Path,
    peers: list[int],
    seconds: float,
    settings,
    max_peers: int = 2,
    floor: bool = False,
    screenshot: Path | None = None,
    chromium: Path | None = None,
) -> dict:
    """Per run (mode, browsers): each browser's fps, glass-to-glass p50/p95, or why it was refused."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise SwaplineError("bench web drives Chromium with playwright: pip install playwright") from None
    from swapline.pipeline.realtime import build_stages
    from swapline.session import SwapSession

    binary = find_chromium(chromium)
    session = SwapSession(settings)
    session.warm_up()
    runs = []
    with tempfile.TemporaryDirectory(prefix="swapline-web-") as work:
        y4m, fps = clip_to_y4m(clip, Path(work) / "camera.y4m")
        modes = (["floor"] if floor else []) + ["swap"]
        for mode in modes:
            stages = label_only_stages if mode == "floor" else build_stages
            for n in peers:
                shot = screenshot if (mode == "swap" and n == peers[0]) else None
                load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
                rows = _run(session, y4m, source, n, seconds, max_peers, stages, binary, shot)
                load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                runs.append({"mode": mode, "peers": n, "browsers": rows, "load_1min_before_after": load})
    return {
        "seconds": seconds,
        "max_peers": max_peers,
        "camera_fps": fps,
        "swapper": session.swapper_name,
        "runs": runs,
    }


def web_tables(report: dict) -> list:
    rows = []
    for run in report["runs"]:
        for index, b in enumerate(run["browsers"], 1):
            where = [run["mode"], f"{index} of {run['peers']}"]
            if b["refused"]:
                why = b["refused"].removeprefix("Refused: ").split(":")[0]  # the whole message is in the JSON
                rows.append([*where, "refused", "", "", "", why])
                continue
            rows.append(
                [
                    *where,
                    f"{b['fps']:.1f}",
                    f"{b['p50_ms']:.0f} / {b['p95_ms']:.0f}",
                    f"{b['server_fps']:.1f} / {b['server_p95_ms']:.0f}",
                    f"{b['jitter_buffer_ms']:.0f}",
                    f"{b['matched']} / {b['server_dropped']}",
                ]
            )
    columns = ["run", "browser", "fps", "g2g p50/p95 ms", "server fps/p95", "jitter ms", "matched/dropped"]
    title = f"browser app ({report['swapper']}, {report['seconds']:g} s measured, max {report['max_peers']} peers)"
    return [make_table(title, columns, rows)]
