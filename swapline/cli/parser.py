"""Argument parsing: every command that swaps takes the same model, device, face and label options."""

from __future__ import annotations

import argparse
from pathlib import Path

from swapline import __version__
from swapline.cli import commands


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error (exit status 2, argparse's convention)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_label_options(parser: argparse.ArgumentParser) -> None:
    from swapline.trust.label import CORE_TEXT, CORNERS, TRANSLATIONS, LabelSettings

    default = LabelSettings()
    group = parser.add_argument_group(f"AI-generated label (always drawn: {CORE_TEXT!r})")
    group.add_argument("--label-language", choices=tuple(TRANSLATIONS), help="add a line in this language")
    group.add_argument("--label-corner", default=default.corner, choices=CORNERS, help="a copy also goes opposite")
    group.add_argument("--label-size", type=float, default=default.size, help="text height / shorter side, >= 0.03")
    group.add_argument("--label-font", type=Path, default=None, help="a TrueType font for other scripts")
    group.add_argument("--label-text", help=argparse.SUPPRESS)  # refused with a clear message


def _add_session_options(parser: argparse.ArgumentParser, detector: str, faces: bool = True) -> None:
    """Models, where they run, which faces, the label: the options of one SwapSession."""
    from swapline.settings import DEVICES, FACE_MODES

    group = parser.add_argument_group("models (registry names are downloaded on first use; or give an .onnx path)")
    group.add_argument("--detector", default=detector, help="full, short (built in), scrfd_2.5g, yoloface_8n")
    group.add_argument(
        "--swapper", default="mesh", help="mesh (built in), inswapper_128, inswapper_128_fp16, simswap_256"
    )
    group.add_argument("--encoder", default="w600k_r50", help="ArcFace model for the neural swappers")
    group.add_argument("--enhancer", default=None, help="face enhancer after the swap, e.g. gfpgan_1.4")
    group.add_argument("--identity", default="dlib", help="reference matching: dlib, w600k_r50, w600k_mbf")
    group.add_argument("--occluder", default=None, help="neural swappers: occlusion mask model, e.g. xseg_3")
    group.add_argument("--face-parser", default=None, help="neural swappers: face parser, e.g. bisenet_resnet_34")
    group.add_argument("--offline", action="store_true", help="never download; use only models already here")
    mesh = parser.add_argument_group("the built-in swapper (--swapper mesh)")
    mesh.add_argument(
        "--shape-strength", type=float, default=1.0, help="0: the target's face shape, 1: the source's proportions"
    )
    mesh.add_argument("--keep-beard", action="store_true", help="keep the target's beard or stubble")
    mesh.add_argument(
        "--no-occluders",
        action="store_true",
        help="swap over what stands in front of the face (a microphone, a hand, a fringe)",
    )
    mesh.add_argument(
        "--no-hands",
        action="store_true",
        help="do not look for hands in front of the face, for any swapper (saves ~6 ms a face on a CPU core)",
    )
    runtime = parser.add_argument_group("where models run (every model of the run)")
    where = runtime.add_mutually_exclusive_group()
    where.add_argument("--device", choices=tuple(DEVICES), default=None, help="cpu, cuda or tensorrt")
    where.add_argument("--providers", default=None, help="ONNX Runtime providers in order, comma-separated")
    runtime.add_argument("--cudnn-search", choices=("EXHAUSTIVE", "HEURISTIC", "DEFAULT"), default="EXHAUSTIVE")
    runtime.add_argument("--no-fp16", action="store_true", help="on a GPU, keep fp32 models (default: fp16 twins)")
    runtime.add_argument("--cuda-nchw", action="store_true", help="on CUDA, keep NCHW convolutions (default: NHWC)")
    runtime.add_argument(
        "--face-workers", type=int, default=None, help="threads for the faces of one frame (default: cores, at most 4)"
    )
    if faces:
        chosen = parser.add_argument_group("which faces are swapped")
        chosen.add_argument(
            "--faces", choices=FACE_MODES, default="all", help="all, the largest, or a reference person"
        )
        chosen.add_argument("--reference", type=Path, help="with --faces reference: a photo of the person to replace")
        chosen.add_argument("--max-faces", type=int, default=None, help="most faces swapped per frame (default: all)")
    _add_label_options(parser)
    parser.add_argument("--mark-key", default=None, help="invisible mark: your key (default: the public key)")
    signing = parser.add_argument_group("C2PA Content Credentials (the 'c2pa' extra)")
    signing.add_argument("--c2pa-cert", type=Path, help="your certificate chain (PEM); default: a local CA")
    signing.add_argument("--c2pa-key", type=Path, help="its private key (PEM)")
    signing.add_argument("--c2pa-tsa", help="a time-stamp authority URL (default: none, offline)")
    signing.add_argument("--no-c2pa", action="store_true", help="do not sign outputs")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="swapline", description="Low-latency face swap; outputs are labelled AI-generated.")
    parser.add_argument("--version", action="version", version=f"swapline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log model loading and providers")
    sub = parser.add_subparsers(dest="command", required=True)

    swap = sub.add_parser("swap", help="swap the source face into a target image or video")
    swap.add_argument("--source", "-s", type=Path, required=True, help="photo of the face to use")
    swap.add_argument("--target", "-t", type=Path, required=True, help="image or video whose faces are replaced")
    swap.add_argument("--output", "-o", type=Path, required=True, help="result (jpg, png, webp; mp4, mov, mkv)")
    swap.add_argument("--crf", type=int, default=20, help="video: x264 quality (lower is better)")
    swap.add_argument("--preset", default="veryfast", help="video: x264 preset")
    swap.add_argument("--segment-frames", type=int, default=300, help="video: frames per resumable segment")
    swap.add_argument(
        "--processes", type=int, default=0, help="video: compose in this many processes (0: threads; for many cores)"
    )
    swap.add_argument("--json", action="store_true", help="print a JSON summary with per-stage times")
    _add_session_options(swap, "full")
    swap.set_defaults(func=commands.swap)

    demo = sub.add_parser("demo", help="swap the bundled sample faces and write the results")
    demo.add_argument("--out", type=Path, default=Path("swapline-demo"), help="folder for the results")
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=commands.demo)

    live = sub.add_parser("live", help="swap faces in a live camera feed or a stand-in video")
    live.add_argument("--source", "-s", type=Path, required=True, help="photo of the face to use")
    where = live.add_mutually_exclusive_group()
    where.add_argument(
        "--camera", default=0, type=lambda v: int(v) if v.isdigit() else v, help="camera index or device path"
    )
    where.add_argument("--input", type=Path, help="a video file played at its own pace, as a camera")
    where.add_argument("--image", type=Path, help="a still image, as a camera")
    live.add_argument("--sink", default="window", help="window, vcam, null, or a video file path (.mp4)")
    live.add_argument("--fps", type=float, default=None, help="camera/playback frame rate")
    live.add_argument("--width", type=int, default=640)
    live.add_argument("--height", type=int, default=480)
    live.add_argument("--loop", action="store_true", help="loop the --input video")
    live.add_argument("--seconds", type=float, default=None, help="stop after this long")
    live.add_argument("--max-latency-ms", type=float, default=200.0, help="drop frames older than this")
    live.add_argument("--no-adaptive", action="store_true", help="keep full rate with no face in view")
    live.add_argument("--no-overlay", action="store_true", help="no latency/fps text in the window")
    live.add_argument("--json", action="store_true", help="print the run summary as JSON")
    live.add_argument("--liveness", action="store_true", help="before swapping: a blink, then a nod; refuses a photo")
    live.add_argument("--liveness-timeout", type=float, default=8.0, help="seconds allowed for each liveness step")
    _add_session_options(live, "short")
    live.set_defaults(func=commands.live)

    verify = sub.add_parser("verify", help="is a file marked as AI-generated? label, invisible mark, C2PA")
    verify.add_argument("files", type=Path, nargs="+", help="images or videos")
    verify.add_argument("--mark-key", default=None, help="the key the mark was made with (default: public)")
    verify.add_argument("--json", action="store_true", help="print the reports as JSON")
    verify.set_defaults(func=commands.verify)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", required=True)
    quality = bench.add_parser("quality", help="identity and pose quality over photo pairs")
    quality.add_argument(
        "--faces", type=Path, required=True, help="folder of photos (and subfolders); identity = name without _<n>"
    )
    quality.add_argument("--json", type=Path, help="also write the results here")
    quality.add_argument("--ablation", action="store_true", help="also run with each swapper step off in turn")
    _add_session_options(quality, "full", faces=False)
    quality.set_defaults(func=commands.bench_quality)

    speed = bench.add_parser("speed", help="per-stage time on one 640x480 frame")
    speed.add_argument("--source", type=Path, required=True)
    speed.add_argument("--target", type=Path, required=True)
    speed.add_argument("--repeats", type=int, default=200)
    speed.add_argument("--face-px", type=int, default=200, help="face width in the frame")
    speed.add_argument("--json", type=Path, help="also write the results here")
    speed.set_defaults(func=commands.bench_speed)

    scale = bench.add_parser("scale", help="cost by face size, image size and 4K tracking")
    scale.add_argument("--source", type=Path, required=True)
    scale.add_argument("--target", type=Path, required=True)
    scale.add_argument("--repeats", type=int, default=15)
    scale.add_argument("--processes", type=int, default=0, help="also run the video jobs composing in N processes")
    scale.add_argument("--json", type=Path, help="also write the results here")
    scale.set_defaults(func=commands.bench_scale)

    liveness = bench.add_parser("liveness", help="photo attacks refused, live-like faces accepted")
    liveness.add_argument("--faces", type=Path, required=True, help="folder of one-face photos (tests/data)")
    liveness.add_argument("--fps", type=float, default=15.0, help="frame rate of the attack clips")
    liveness.add_argument("--motions", default="sway,tilt,turn,wobble", help="how the photos are moved")
    liveness.add_argument("--json", type=Path, help="also write the results here")
    liveness.set_defaults(func=commands.bench_liveness)

    watermark = bench.add_parser("watermark", help="invisible mark: attacks survived, false positives, speed")
    watermark.add_argument("--photos", type=Path, nargs="+", required=True)
    watermark.add_argument("--clip-photo", type=Path, help="make a 720p clip from this photo for H.264 attacks")
    watermark.add_argument("--keys", type=int, default=1000, help="random keys per unmarked image")
    watermark.add_argument("--libraries", action="store_true", help="also measure the existing libraries")
    watermark.add_argument("--codes", action="store_true", help="also compare error-correcting codes")
    watermark.add_argument("--json", type=Path, help="also write the results here")
    watermark.set_defaults(func=commands.bench_watermark)

    latency = bench.add_parser("latency", help="live pipeline latency vs the serial baseline")
    latency.add_argument("--source", type=Path, required=True, help="photo of the face to use")
    latency.add_argument("--input", type=Path, required=True, help="video played as a camera (see bench clip)")
    latency.add_argument("--fps", type=float, default=30.0)
    latency.add_argument("--seconds", type=float, default=20.0, help="per layout")
    latency.add_argument("--stall-ms", type=float, default=0.0, help="a stage hiccup of this many ms...")
    latency.add_argument("--stall-every", type=int, default=30, help="...every this many frames")
    latency.add_argument("--window-s", type=float, default=10.0, help="p99 reported per window of this length")
    latency.add_argument("--layouts", default="split,single,serial", help="comma list of split, single, serial")
    latency.add_argument(
        "--gap-rounds", type=int, default=3, help="rounds of the compose in-pipeline vs alone check (0: none)"
    )
    latency.add_argument("--json", type=Path, help="also write the results here")
    _add_session_options(latency, "short")
    latency.set_defaults(func=commands.bench_latency)

    video = bench.add_parser("video", help="video swap throughput vs decode+encode, and jitter")
    video.add_argument("--source", type=Path, required=True, help="photo of the face to use")
    video.add_argument("--input", type=Path, required=True, help="the video to swap (see bench clip)")
    video.add_argument("--preset", default="veryfast")
    video.add_argument("--crf", type=int, default=20)
    video.add_argument("--still", type=Path, help="photo for the still-head jitter clip")
    video.add_argument("--json", type=Path, help="also write the results here")
    _add_session_options(video, "full")
    video.set_defaults(func=commands.bench_video)

    neural = bench.add_parser("neural", help="neural swap path latency with a stand-in generator")
    neural.add_argument("--source", type=Path, required=True)
    neural.add_argument("--target", type=Path, required=True)
    neural.add_argument("--frames", type=int, default=5)
    neural.add_argument("--providers", default=None, help="e.g. CUDAExecutionProvider,CPUExecutionProvider")
    neural.add_argument("--cuda-nchw", action="store_true", help="on CUDA, keep NCHW convolutions (default: NHWC)")
    neural.add_argument("--json", type=Path, help="also write the results here")
    neural.set_defaults(func=commands.bench_neural)

    sheet = bench.add_parser("sheet", help="before/after contact sheet of the built-in swapper")
    sheet.add_argument("--faces", type=Path, required=True, help="folder with the sample photos (tests/data)")
    sheet.add_argument("--out", type=Path, required=True, help="png or jpg to write")
    sheet.add_argument(
        "--every-photo",
        action="store_true",
        help="every photo under --faces as a target (for local inspection); default: the astronaut and Grace Hopper",
    )
    sheet.set_defaults(func=commands.bench_sheet)

    clip = bench.add_parser("clip", help="make a test clip (moving face) from a photo")
    clip.add_argument("--photo", type=Path, required=True)
    clip.add_argument("--out", type=Path, required=True)
    clip.add_argument("--size", default="640x480")
    clip.add_argument("--fps", type=float, default=30.0)
    clip.add_argument("--seconds", type=float, default=10.0)
    clip.add_argument("--face-px", type=int, default=200)
    clip.add_argument("--motion", type=float, default=1.0, help="0 = still head")
    clip.add_argument("--audio-hz", type=float, default=None, help="add a sine tone of this pitch")
    clip.set_defaults(func=commands.bench_clip)

    from swapline.cli import batch as batch_cli
    from swapline.cli import web as web_cli

    web_cli.register(sub, bench)
    batch_cli.register(sub, bench)

    models = sub.add_parser("models", help="model files").add_subparsers(dest="models", required=True)
    models.add_parser("list", help="built-in and downloadable models, with licences").set_defaults(
        func=commands.models_list
    )
    fetch = models.add_parser("fetch", help="download models (and what they need), verified")
    fetch.add_argument("names", nargs="+")
    fetch.add_argument("--offline", action="store_true")
    fetch.set_defaults(func=commands.models_fetch)
    verify = models.add_parser("verify", help="check downloaded models (hash and signature)")
    verify.add_argument("names", nargs="*")
    verify.set_defaults(func=commands.models_verify)
    path = models.add_parser("path", help="where a model file is (or would be) kept")
    path.add_argument("name")
    path.set_defaults(func=commands.models_path)
    return parser
