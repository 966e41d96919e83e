"""`swapline serve` (the browser app) and `swapline bench web` (it, measured in headless browsers)."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from swapline.cli.output import show, stderr
from swapline.errors import SwaplineError

MAX_BENCH_PEERS = 4
MAX_BENCH_SECONDS = 60.0


def register(sub, bench) -> None:
    """Add `serve` to the top-level subparsers and `web` to the bench subparsers."""
    from swapline.cli.parser import _add_session_options

    serve_parser = sub.add_parser("serve", help="browser app: live swap of the browser's camera over WebRTC")
    _add_server_options(serve_parser)
    _add_session_options(serve_parser, "short")
    serve_parser.set_defaults(func=serve)

    web = bench.add_parser("web", help="the browser app in headless Chromium: fps and glass-to-glass latency")
    web.add_argument("--source", type=Path, required=True, help="photo of the face to use")
    web.add_argument("--input", type=Path, required=True, help="clip played as each browser's camera (see bench clip)")
    web.add_argument("--peers", default="1", help=f"comma list of browsers at once, each 1..{MAX_BENCH_PEERS}")
    web.add_argument("--seconds", type=float, default=15.0, help=f"measured per run, at most {MAX_BENCH_SECONDS:g}")
    web.add_argument("--max-peers", type=int, default=2, help="the server's limit (browsers past it are refused)")
    web.add_argument("--floor", action="store_true", help="also run label-only (no swap): the WebRTC floor")
    web.add_argument("--screenshot", type=Path, help="save the first browser's page here (png)")
    web.add_argument("--chromium", type=Path, default=None, help="the Chromium binary (default: found on PATH)")
    web.add_argument("--json", type=Path, help="also write the results here")
    _add_session_options(web, "short")
    web.set_defaults(func=bench_web)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    from swapline.web.settings import WebSettings

    d = WebSettings()
    group = parser.add_argument_group("where it listens and who may use it")
    group.add_argument("--host", default=d.host, help="listen here (default loopback; elsewhere needs a token)")
    group.add_argument("--port", type=int, default=d.port)
    group.add_argument("--token", default=None, help="required on every API call (made up when off loopback)")
    group.add_argument("--cert", type=Path, default=None, help="HTTPS certificate (PEM)")
    group.add_argument("--key", type=Path, default=None, help="HTTPS private key (PEM)")
    group.add_argument("--insecure", action="store_true", help="allow plain HTTP off loopback")
    group.add_argument("--allowed-host", action="append", default=[], help="a host name the page is reached by")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-peers", type=int, default=d.max_peers, help="cameras swapped at once")
    limits.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s, help="close a peer silent this long")
    limits.add_argument("--max-upload-mb", type=float, default=d.max_upload_bytes / 1e6, help="source photo size")
    limits.add_argument("--max-latency-ms", type=float, default=d.max_latency_ms, help="drop frames older than this")
    parser.add_argument(
        "--ice-server", action="append", default=[], help="stun:host:port or turn:user:pass@host:port (repeatable)"
    )


def _web_settings(args: argparse.Namespace):
    from swapline.web.settings import WebSettings

    return WebSettings(
        host=args.host,
        port=args.port,
        token=args.token,
        insecure=args.insecure,
        cert=args.cert,
        key=args.key,
        max_peers=args.max_peers,
        ice_servers=tuple(args.ice_server),
        idle_timeout_s=args.idle_timeout,
        max_upload_bytes=int(args.max_upload_mb * 1e6),
        max_latency_ms=args.max_latency_ms,
        allowed_hosts=tuple(args.allowed_host),
    )


def _need_web_extra() -> None:
    try:
        import aiortc  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise SwaplineError(
            f"the browser app needs the 'web' extra ({exc.name} is missing): pip install 'swapline[web]'"
        ) from None


def serve(args: argparse.Namespace) -> int:
    _need_web_extra()
    from swapline.cli.commands import _session
    from swapline.web.app import WebServer
    from swapline.web.server import serve_forever

    if args.faces == "reference":
        raise SwaplineError("the page chooses all faces or the largest; --faces reference is not offered")
    settings = _web_settings(args).exposed()  # checked before any model loads
    session = _session(args)
    with stderr.status("warming up the models"):
        session.warm_up()
    web = WebServer(session, settings)

    def ready(url: str) -> None:
        wildcard = settings.host in ("0.0.0.0", "::")
        if wildcard:  # not an address a browser can open: this machine's own name for it
            url = url.replace(f"//{settings.host}:", "//127.0.0.1:").replace("//[::]:", "//127.0.0.1:")
        link = f"{url}#token={settings.token}" if settings.token else url
        show(f"swapline serve: open {link}" + (" (from elsewhere: this machine's address)" if wildcard else ""))
        if settings.insecure and not settings.loopback and not settings.https:
            stderr.print("plain HTTP: browsers on other machines allow the camera only over HTTPS (--cert/--key)")
        if settings.token:
            show(f"token: {settings.token}  (the page asks for it; the link above carries it)")
        show(f"{settings.max_peers} camera(s) at once; every frame sent back is labelled AI-generated. Ctrl-C stops.")

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once it has shut down cleanly
        serve_forever(web, on_ready=ready)
    show("stopped")
    return 0


def bench_web(args: argparse.Namespace) -> int:
    _need_web_extra()
    from swapline.bench.web import run_web_bench, web_tables
    from swapline.cli.commands import _settings, _write_json

    try:
        peers = [int(v) for v in args.peers.split(",") if v.strip()]
    except ValueError:
        raise SwaplineError(f"--peers must be a comma list of numbers, not {args.peers!r}") from None
    if not peers or any(not 1 <= n <= MAX_BENCH_PEERS for n in peers):
        raise SwaplineError(f"--peers: each run has 1 to {MAX_BENCH_PEERS} browsers")
    if not 1.0 <= args.seconds <= MAX_BENCH_SECONDS:
        raise SwaplineError(f"--seconds must be between 1 and {MAX_BENCH_SECONDS:g}")
    with stderr.status(f"browsers {args.peers}, {args.seconds:g} s each"):
        report = run_web_bench(
            args.source,
            args.input,
            peers,
            args.seconds,
            _settings(args),
            max_peers=args.max_peers,
            floor=args.floor,
            screenshot=args.screenshot,
            chromium=args.chromium,
        )
    show(*web_tables(report))
    _write_json(args.json, report)
    return 0
