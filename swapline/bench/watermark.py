"""`swapline bench watermark`: the invisible mark against the attacks it must survive.

Photos (tests/data) and a 720p clip made from one of them are marked, attacked (JPEG, H.264
through PyAV's libx264 in yuv420p, resize, crop, brightness) and decoded. Unmarked photos and
frames are decoded with many random keys to count false detections, and marked ones with wrong
keys. Embed and decode are timed on one thread. Optionally the same attacks run against the
existing libraries (invisible-watermark, blind-watermark, when installed) and the
error-correcting codes (reedsolo, bchlib, galois, when installed) are compared.
"""

from __future__ import annotations

import importlib.util
import io
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from swapline.bench.report import ProgressCallback, machine_info, make_table, no_progress
from swapline.io import read_image
from swapline.io.video import x264_options
from swapline.trust.mark import payload as code
from swapline.trust.mark.detect import spectra
from swapline.trust.watermark import Payload, Watermarker, WatermarkSettings

BENCH_PAYLOAD = Payload(job_id=0x5EED1234)
CLIP = {"size": (1280, 720), "fps": 30, "seconds": 3, "face_px": 260}
CRFS = (23, 28)
SPEED_SIZES = ((640, 480), (1280, 720))
CLIP_SAMPLE = 10  # image attacks on every 10th clip frame; unmarked frames for the null test


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def h264(frames: list[np.ndarray], crf: int, preset: str = "medium") -> list[np.ndarray]:
    """Encode with PyAV's libx264 (yuv420p, even sizes) and decode back to BGR."""
    import av

    h, w = (d - d % 2 for d in frames[0].shape[:2])
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(30))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset, **x264_options()}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), "bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as source:
        return [frame.to_ndarray(format="bgr24") for frame in source.decode(video=0)]


def _crop(side: str) -> Callable[[np.ndarray], np.ndarray]:
    def crop(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        cut = {"left": (0, 0, w // 10, 0), "right": (0, 0, 0, w // 10), "top": (h // 10, 0, 0, 0)}
        top, bottom, left, right = cut.get(side, (0, h // 10, 0, 0))
        return image[top : h - bottom, left : w - right]

    return crop


IMAGE_ATTACKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda image: image,
    "JPEG 75": lambda image: _jpeg(image, 75),
    "JPEG 50": lambda image: _jpeg(image, 50),
    "resize 50%": lambda image: cv2.resize(
        image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA
    ),
    **{f"crop 10% {side}": _crop(side) for side in ("left", "right", "top", "bottom")},
    "brightness +10%": lambda image: cv2.convertScaleAbs(image, alpha=1.1),
    "brightness -10%": lambda image: cv2.convertScaleAbs(image, alpha=0.9),
}
STILL_H264 = {f"H.264 CRF {crf} (1 frame)": crf for crf in CRFS}


def _outcome(report, payload: Payload) -> dict:
    return {
        "found": report is not None,
        "recovered": bool(report and report.payload == payload),
        "bits_corrected": report.bits_corrected if report else None,
        "z": report.confidence if report else None,
    }


def _photo(marker: Watermarker, image: np.ndarray) -> dict:
    marked = image.copy()
    marker.embed(marked, BENCH_PAYLOAD)
    attacks = {name: _outcome(marker.decode(attack(marked)), BENCH_PAYLOAD) for name, attack in IMAGE_ATTACKS.items()}
    for name, crf in STILL_H264.items():
        attacks[name] = _outcome(marker.decode(h264([marked], crf)[0]), BENCH_PAYLOAD)
    return {
        "size": f"{image.shape[1]}x{image.shape[0]}",
        "psnr_db": round(cv2.PSNR(image, marked), 2),
        "attacks": attacks,
    }


def _read_clip(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as source:
        return [frame.to_ndarray(format="bgr24") for frame in source.decode(video=0)]


def _clip(marker: Watermarker, frames: list[np.ndarray], preset: str, on_step: Callable[[], None]) -> dict:
    marked = [frame.copy() for frame in frames]
    embed_ms = []
    for frame in marked:
        start = time.perf_counter()
        marker.embed(frame, BENCH_PAYLOAD)
        embed_ms.append((time.perf_counter() - start) * 1000.0)
    sample = marked[::CLIP_SAMPLE]
    result = {
        "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
        "frames": len(frames),
        "psnr_db": round(float(np.mean([cv2.PSNR(a, b) for a, b in zip(frames, marked, strict=True)])), 2),
        "embed_ms_median": round(float(np.median(embed_ms[1:])), 3),
        "attacks": {},
    }
    for name, attack in IMAGE_ATTACKS.items():
        outcomes = [_outcome(marker.decode(attack(frame)), BENCH_PAYLOAD) for frame in sample]
        result["attacks"][name] = _frames_summary(outcomes)
    on_step()
    for crf in CRFS:
        decoded = h264(marked, crf, preset)
        summary = _frames_summary([_outcome(marker.decode(frame), BENCH_PAYLOAD) for frame in decoded])
        summary["pooled"] = _outcome(marker.decode_frames(decoded), BENCH_PAYLOAD)
        summary["pooled_first_10"] = _outcome(marker.decode_frames(decoded[:10]), BENCH_PAYLOAD)
        result["attacks"][f"H.264 CRF {crf} ({preset})"] = summary
        on_step()
    return result


def _frames_summary(outcomes: list[dict]) -> dict:
    corrected = [o["bits_corrected"] for o in outcomes if o["recovered"]]
    return {
        "frames": len(outcomes),
        "recovered": sum(o["recovered"] for o in outcomes),
        "found": sum(o["found"] for o in outcomes),
        "bits_corrected_max": max(corrected) if corrected else None,
        "z_median": float(np.median([o["z"] or 0.0 for o in outcomes])),
    }


def _null(settings: WatermarkSettings, images: list[np.ndarray], keys: int, prefix: str) -> dict:
    """Decode each image with `keys` random keys (the analysis is key-independent, done once)."""
    analysed = [spectra(image, settings.scales) for image in images]
    detections, z_max = 0, -math.inf
    for index in range(keys):
        marker = Watermarker(replace(settings, key=f"{prefix}-{index}"))
        for frame in analysed:
            peak = marker.peak([frame])
            if peak is not None:
                z_max = max(z_max, peak.z)
                detections += peak.z >= marker.threshold
    trials = keys * len(images)
    return {"keys": keys, "images": len(images), "trials": trials, "detections": detections, "z_max": round(z_max, 2)}


def _timed(fn: Callable[[], object], repeats: int, before: Callable[[], object] | None = None) -> np.ndarray:
    samples = []
    for _ in range(repeats):
        if before:
            before()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return np.array(samples)


def _speed(settings: WatermarkSettings, photo: np.ndarray, repeats: int) -> dict:
    result = {}
    for width, height in SPEED_SIZES:
        base = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        frame = base.copy()
        marker = Watermarker(settings)
        first = _timed(lambda m=marker, f=frame: m.embed(f, BENCH_PAYLOAD), 1)[0]
        embed = _timed(
            lambda m=marker, f=frame: m.embed(f, BENCH_PAYLOAD), repeats, lambda f=frame, b=base: np.copyto(f, b)
        )
        decode = _timed(lambda m=marker, f=frame: m.decode(f), max(5, repeats // 20))
        result[f"{width}x{height}"] = {
            "embed_first_ms": round(float(first), 2),
            "embed_median_ms": round(float(np.median(embed)), 3),
            "embed_p95_ms": round(float(np.percentile(embed, 95)), 3),
            "decode_median_ms": round(float(np.median(decode)), 2),
        }
    return result


def run_watermark_bench(
    photos: list[Path],
    clip_photo: Path | None = None,
    settings: WatermarkSettings | None = None,
    null_keys: int = 1000,
    repeats: int = 200,
    preset: str = "medium",
    libraries: bool = False,
    codes: bool = False,
    on_progress: ProgressCallback = no_progress,
) -> dict:
    """Mark, attack and decode photos and a 720p clip; count false detections; time embed and decode."""
    from swapline.bench.clips import make_clip

    settings = settings or WatermarkSettings()
    marker = Watermarker(settings)
    images = {Path(p).name: read_image(p).pixels for p in photos}
    total = len(images) + (2 + len(CRFS) if clip_photo else 0) + 2 + libraries + codes
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        on_progress(done, total)

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the budget is per frame on one core; NumPy's FFT is single-threaded
    try:
        result: dict = {
            "machine": machine_info(),
            "settings": {
                **asdict(settings),
                "threshold_z": round(marker.threshold, 3),
                "code_bits": code.CODE_BITS,
                "payload_bits": code.PAYLOAD_BYTES * 8,
            },
            "payload": asdict(BENCH_PAYLOAD),
            "photos": {},
        }
        for name, image in images.items():
            result["photos"][name] = _photo(marker, image)
            step()
        unmarked = list(images.values())
        if clip_photo:
            with tempfile.TemporaryDirectory() as work:
                clip_path = make_clip(Path(clip_photo), Path(work) / "clip.mp4", **CLIP)
                frames = _read_clip(clip_path)
            step()
            result["clip"] = {"photo": Path(clip_photo).name, "preset": preset, **_clip(marker, frames, preset, step)}
            unmarked += frames[:: CLIP_SAMPLE * 3]
        marked = []
        for image in images.values():
            copy = image.copy()
            marker.embed(copy, BENCH_PAYLOAD)
            marked.append(copy)
        result["false_positives"] = _null(settings, unmarked, null_keys, "null")
        result["wrong_key"] = _null(settings, marked, max(1, null_keys // 10), "wrong")
        step()
        result["speed"] = _speed(settings, next(iter(images.values())), repeats)
        step()
        if libraries:
            result["libraries"] = compare_libraries(images)
            step()
        if codes:
            result["codes"] = compare_codes()
            step()
    finally:
        cv2.setNumThreads(threads)
    return result


# -- existing libraries, measured against the same attacks -----------------------------------


def _load_file(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _invisible_watermark(method: str, bits: np.ndarray):
    """invisible-watermark's DWT-DCT embedders, loaded by file: its package imports torch for rivaGan."""
    found = importlib.util.find_spec("imwatermark")
    if found is None:
        return None
    folder = Path(next(iter(found.submodule_search_locations)))
    if method == "dwtDct":
        embedder = _load_file("_imw_maxdct", folder / "maxDct.py").EmbedMaxDct
    else:
        embedder = _load_file("_imw_dwtdctsvd", folder / "dwtDctSvd.py").EmbedDwtDctSvd
    return (
        lambda image: embedder(watermarks=list(bits), wmLen=bits.size).encode(image),
        lambda image: np.asarray(embedder(watermarks=[], wmLen=bits.size).decode(image), dtype=np.uint8),
    )


def _blind_watermark(bits: np.ndarray):
    if importlib.util.find_spec("blind_watermark") is None:
        return None
    from blind_watermark import WaterMark, bw_notes

    bw_notes.close()  # it prints a greeting otherwise

    def embed(image: np.ndarray) -> np.ndarray:
        mark = WaterMark(password_img=1, password_wm=1, processes=1)
        mark.read_img(img=image)
        mark.read_wm(bits.astype(bool), mode="bit")
        return np.clip(mark.embed(), 0, 255).round().astype(np.uint8)

    def decode(image: np.ndarray) -> np.ndarray:
        mark = WaterMark(password_img=1, password_wm=1, processes=1)
        found = mark.extract(embed_img=image.astype(np.float32), wm_shape=bits.size, mode="bit")
        return (np.asarray(found) >= 0.5).astype(np.uint8)

    return embed, decode


def compare_libraries(images: dict[str, np.ndarray]) -> dict:
    """Each installed library: 48 raw bits (they have no error correction) through the same attacks."""
    bits = np.unpackbits(np.frombuffer(BENCH_PAYLOAD.to_bytes(), np.uint8))
    candidates = {
        "invisible-watermark dwtDct": _invisible_watermark("dwtDct", bits),
        "invisible-watermark dwtDctSvd": _invisible_watermark("dwtDctSvd", bits),
        "blind-watermark": _blind_watermark(bits),
    }
    attacks = {
        **IMAGE_ATTACKS,
        **{name: (lambda image, c=crf: h264([image], c)[0]) for name, crf in STILL_H264.items()},
    }
    result = {}
    for name, candidate in candidates.items():
        if candidate is None:
            result[name] = {"installed": False}
            continue
        embed, decode = candidate
        photos = {}
        for photo, image in images.items():
            frame = cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)
            embed_ms = float(_timed(lambda f=frame, e=embed: e(f), 1)[0])
            marked = embed(image)
            errors = {}
            for attack_name, attack in attacks.items():
                try:
                    errors[attack_name] = int(np.count_nonzero(decode(attack(marked)) != bits))
                except Exception as error:  # a library that cannot read a cropped or small copy
                    errors[attack_name] = f"error: {type(error).__name__}"
            photos[photo] = {
                "psnr_db": round(cv2.PSNR(image, marked), 2),
                "embed_ms_640x480": round(embed_ms, 1),
                "bit_errors": errors,
            }
        result[name] = {"installed": True, "photos": photos}
    return result


# -- error-correcting codes --------------------------------------------------------------------


def _distribution(name: str) -> dict:
    from importlib import metadata

    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return {}
    size = sum(f.size or 0 for f in dist.files or [])
    licence = dist.metadata.get("License") or ""
    classifiers = [c.split(" :: ")[-1] for c in dist.metadata.get_all("Classifier") or [] if c.startswith("License")]
    return {"version": dist.version, "installed_kb": round(size / 1024), "license": licence or "; ".join(classifiers)}


def _bchlib_code():
    if importlib.util.find_spec("bchlib") is None:
        return None
    import bchlib

    bch = bchlib.BCH(8, m=7)
    n = code.PAYLOAD_BYTES * 8 + bch.ecc_bits

    def encode(data: bytes) -> np.ndarray:
        return np.unpackbits(np.frombuffer(data + bytes(bch.encode(bytearray(data))), np.uint8))[:n]

    def decode(soft: np.ndarray) -> bytes | None:
        packed = np.packbits((soft > 0).astype(np.uint8)).tobytes()
        data, ecc = bytearray(packed[: code.PAYLOAD_BYTES]), bytearray(packed[code.PAYLOAD_BYTES :])
        if bch.decode(data, ecc) < 0:
            return None
        bch.correct(data, ecc)
        return bytes(data)

    return n, encode, decode


def _galois_code():
    if importlib.util.find_spec("galois") is None:
        return None
    start = time.perf_counter()
    import galois

    bch = galois.BCH(127, 71)  # t = 8, shortened to 48 data bits
    setup_s = time.perf_counter() - start
    shorten = bch.k - code.PAYLOAD_BYTES * 8

    def encode(data: bytes) -> np.ndarray:
        message = np.concatenate([np.zeros(shorten, np.uint8), np.unpackbits(np.frombuffer(data, np.uint8))])
        return np.asarray(bch.encode(galois.GF2(message)))[shorten:].astype(np.uint8)

    def decode(soft: np.ndarray) -> bytes | None:
        received = np.concatenate([np.zeros(shorten, np.uint8), (soft > 0).astype(np.uint8)])
        message, errors = bch.decode(galois.GF2(received), errors=True)
        return None if errors < 0 else np.packbits(np.asarray(message)[shorten:].astype(np.uint8)).tobytes()

    start = time.perf_counter()
    decode(encode(bytes(6)).astype(float) - 0.5)  # the first call compiles (numba)
    return bch.n - shorten, encode, decode, setup_s + time.perf_counter() - start


def _ours() -> tuple[Callable, Callable, Callable]:
    def encode(data: bytes) -> np.ndarray:
        return code.encode(Payload.from_bytes(data))

    def decoder(**options) -> Callable[[np.ndarray], bytes | None]:
        def decode(soft: np.ndarray) -> bytes | None:
            found = code.decode(soft, **options)
            return found[0].to_bytes() if found else None

        return decode

    return encode, decoder(), decoder(erasures=(0,), radius=code.CODE_BITS)  # used; hard decisions only


def compare_codes(
    snrs: tuple[float, ...] = (1.4, 1.6, 1.8), trials: int = 300, noise_trials: int = 1000, seed: int = 0
) -> dict:
    """Payload recovery vs per-bit SNR for a 104-bit budget (an n-bit code gets SNR * sqrt(104 / n)).

    Soft values are (2 bit - 1) * snr + N(0, 1), as the decoder's bit sums behave; "wrong" counts
    payloads decoded from pure noise (snr 0), which the sync threshold normally stops first.
    """
    rng = np.random.default_rng(seed)
    encode, ours, hard = _ours()
    candidates: dict[str, tuple] = {
        "reedsolo RS(20,10) GF(2^5), soft erasure retries (used)": (code.CODE_BITS, encode, ours, "reedsolo"),
        "reedsolo RS(20,10) GF(2^5), hard decisions": (code.CODE_BITS, encode, hard, "reedsolo"),
    }
    bch = _bchlib_code()
    if bch:
        candidates["bchlib BCH(104,48) t=8"] = (*bch, "bchlib")
    galois_code = _galois_code()
    setup = {}
    if galois_code:
        n, enc, dec, setup_s = galois_code
        candidates["galois BCH(104,48) t=8"] = (n, enc, dec, "galois")
        setup["galois BCH(104,48) t=8"] = round(setup_s, 1)
    result = {}
    for name, (n, enc, dec, dist) in candidates.items():
        rates, wrong, times = {}, 0, []
        for snr in (*snrs, 0.0):
            scaled = snr * math.sqrt(104 / n)
            ok = 0
            for _ in range(trials if snr else noise_trials):
                data = Payload(job_id=int(rng.integers(0, 2**32))).to_bytes()
                soft = (2.0 * enc(data) - 1.0) * scaled + rng.standard_normal(n)
                start = time.perf_counter()
                out = dec(soft)
                times.append((time.perf_counter() - start) * 1000.0)
                ok += out == data
                wrong += snr == 0.0 and out is not None and out != data
            if snr:
                rates[str(snr)] = round(ok / trials, 3)
        result[name] = {
            "bits": n,
            "recovered": rates,
            "wrong_from_noise": f"{wrong}/{noise_trials}",
            "decode_ms": round(float(np.median(times)), 3),
            "first_use_s": setup.get(name),
            **_distribution(dist),
        }
    return result


# -- tables ----------------------------------------------------------------------------------


def _cell(outcome: dict) -> str:
    if outcome["recovered"]:
        return f"yes ({outcome['bits_corrected']})"
    return "found, unreadable" if outcome["found"] else "no"


def _frames_cell(summary: dict) -> str:
    return f"{summary['recovered']}/{summary['frames']}"


def watermark_tables(result: dict) -> list:
    """Recovery per attack (bits corrected in brackets), quality and speed, false positives."""
    photos = result["photos"]
    clip = result.get("clip")
    attacks = list(next(iter(photos.values()))["attacks"]) if photos else []
    columns = ["attack", *photos]
    rows = [[name, *(_cell(p["attacks"][name]) for p in photos.values())] for name in attacks]
    if clip:
        columns.append(f"clip {clip['size']} frames")
        for row in rows:
            summary = clip["attacks"].get(row[0])
            row.append(_frames_cell(summary) if summary else "")
        for name, summary in clip["attacks"].items():
            if name.startswith("H.264") and "(1 frame)" not in name:
                pooled, first = summary["pooled"], summary["pooled_first_10"]
                rows.append([name, *([""] * len(photos)), _frames_cell(summary)])
                rows.append(
                    [
                        f"{name}, pooled: all / first 10 frames",
                        *([""] * len(photos)),
                        f"{_cell(pooled)} / {_cell(first)}",
                    ]
                )
    tables = [make_table("mark recovered after each attack (bits corrected)", columns, rows)]

    quality = [[name, p["size"], p["psnr_db"]] for name, p in photos.items()]
    if clip:
        quality.append([f"clip ({clip['photo']})", clip["size"], clip["psnr_db"]])
    tables.append(make_table("quality of the marked image", ["image", "size", "PSNR dB"], quality))
    speed = [
        [size, s["embed_median_ms"], s["embed_p95_ms"], s["embed_first_ms"], s["decode_median_ms"]]
        for size, s in result["speed"].items()
    ]
    tables.append(
        make_table(
            "speed, one thread", ["frame", "embed median ms", "embed p95 ms", "first embed ms", "decode ms"], speed
        )
    )
    fp, wrong = result["false_positives"], result["wrong_key"]
    threshold = result["settings"]["threshold_z"]
    tables.append(
        make_table(
            f"false detections (threshold z = {threshold}, bound 1e-6 per decode)",
            ["decoded", "trials", "detections", "highest z"],
            [
                [
                    f"{fp['images']} unmarked photos and frames x {fp['keys']} random keys",
                    fp["trials"],
                    fp["detections"],
                    fp["z_max"],
                ],
                [
                    f"{wrong['images']} marked photos x {wrong['keys']} wrong keys",
                    wrong["trials"],
                    wrong["detections"],
                    wrong["z_max"],
                ],
            ],
        )
    )
    if "libraries" in result:
        tables.append(_library_table(result["libraries"]))
    if "codes" in result:
        tables.append(_code_table(result["codes"]))
    return tables


def _library_table(libraries: dict) -> object:
    rows = []
    for name, entry in libraries.items():
        if not entry["installed"]:
            rows.append([name, "not installed", "", "", ""])
            continue
        for photo, p in entry["photos"].items():
            survived = [a for a, e in p["bit_errors"].items() if e == 0]
            failed = [f"{a} ({e})" for a, e in p["bit_errors"].items() if e != 0]
            rows.append(
                [
                    f"{name}: {photo}",
                    p["psnr_db"],
                    p["embed_ms_640x480"],
                    ", ".join(survived) or "-",
                    ", ".join(failed) or "-",
                ]
            )
    return make_table(
        "existing libraries, 48 bits (bit errors)",
        ["library: photo", "PSNR dB", "embed ms 640x480", "exact after", "failed after"],
        rows,
    )


def _code_table(codes: dict) -> object:
    snrs = list(next(iter(codes.values()))["recovered"])
    rows = [
        [
            name,
            c["bits"],
            *(c["recovered"][s] for s in snrs),
            c["wrong_from_noise"],
            c["decode_ms"],
            c.get("first_use_s") or "",
            c.get("installed_kb", ""),
            c.get("license", ""),
        ]
        for name, c in codes.items()
    ]
    columns = [
        "code",
        "bits",
        *(f"recovered, SNR {s}" for s in snrs),
        "wrong from noise",
        "decode ms",
        "first use s",
        "kB",
        "license",
    ]
    return make_table("error-correcting codes for 48 payload bits", columns, rows)
