"""Render BENCHMARKS.md from the JSON results in benchmarks/results (run after re-running a benchmark).

python benchmarks/render.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

CLIP = "swapline bench clip --photo tests/data/biden2.jpg --out bench-clip.mp4 --seconds 10"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def machine_line(result: dict) -> str:
    m = result["machine"]
    return f"{m['cores']} cores of an {m['cpu']}, Python {m['python']}, ONNX Runtime {m['onnxruntime']} (CPU)"


def speed_section(speed: dict) -> str:
    rows = "\n".join(f"| {stage} | {s['median_ms']:.2f} | {s['p95_ms']:.2f} |" for stage, s in speed["stages"].items())
    return f"""## Per-stage speed

```bash
swapline bench speed --source tests/data/obama.jpg --target tests/data/biden2.jpg --json benchmarks/results/speed.json
```

One 640x480 frame cut from `biden2.jpg` so the face is ~{speed["face_px"]} px wide; {speed["repeats"]} runs per
stage after 5 warm-up runs. Machine: {machine_line(speed)}.

| stage | median ms | p95 ms |
|---|---|---|
{rows}

Targets: detection <= 3 ms (met by the short-range detector, the live default; the full-range
detector, used for stills and photos with small faces, takes longer), landmarks <= 4 ms,
swap + blend <= 10 ms. Models run on one intra-op thread without spinning, so that pipeline
stages can use the other core.
"""


def quality_section(quality: dict) -> str:
    sm = quality["summary"]
    rows = "\n".join(
        f"| {p['source']} | {p['target']} | {p['retrieved']} | {p['dist_source']:.3f} | {p['dist_target']:.3f} "
        f"| {p['landmark_error']:.3f} | {p['seam']:.2f} | {p['sharpness']:.2f} | {p['swap_ms']:.1f} |"
        for p in quality["pairs"]
    )
    metrics = [
        ("identity retrieval", "identity_retrieval", "{:.0%}", "100%"),
        (
            "distance to the source person's other photos",
            "mean_dist_to_source_person_other_photos",
            "{:.3f}",
            "<= 0.50",
        ),
        (
            "distance to the target person's other photos",
            "mean_dist_to_target_person_other_photos",
            "{:.3f}",
            ">= 0.70",
        ),
        ("distance to the source photo", "mean_dist_to_source", "{:.3f}", ""),
        ("distance to the target photo", "mean_dist_to_target", "{:.3f}", ""),
        ("seam score", "mean_seam_score", "{:.2f}", "<= 1.2"),
        ("sharpness ratio", "mean_sharpness_ratio", "{:.2f}", "0.7-1.4"),
        ("landmark error vs target (IOD), mean", "mean_landmark_error_iod", "{:.3f}", "no worse"),
        ("landmark error vs target (IOD), max", "max_landmark_error_iod", "{:.3f}", ""),
        ("swap + blend, median ms", "median_swap_ms", "{:.1f}", ""),
    ]
    variants = {"all steps": sm, **quality.get("ablation", {})}
    head = "| metric | target | " + " | ".join(variants) + " |"
    rule = "|---|---|" + "---|" * len(variants)
    table = [head, rule]
    for title, key, fmt, goal in metrics:
        cells = [fmt.format(v[key]) if v.get(key) is not None else "n/a" for v in variants.values()]
        table.append(f"| {title} | {goal} | " + " | ".join(cells) + " |")
    return f"""## Quality

```bash
swapline bench quality --faces tests/data --ablation --json benchmarks/results/quality.json
```

All {sm["pairs"]} ordered pairs of photos of different people in `tests/data` (identity = file-name
prefix; photos with several faces are skipped). Distances are dlib ResNet descriptor distances
(same person < 0.6; two real photos of one person here: 0.27-0.45); "other photos" leaves out
the very photo that was copied from (or into). "Nearest identity" is the person whose photos
are nearest on average to the output. Landmark error: mean distance between the output's and
the target's FaceMesh points, in inter-ocular distances (IOD). Seam score: gradient energy in a
band along the face oval in the output over the same band in the target. Sharpness ratio: mean
|Laplacian| inside the face, output over target. Machine: {machine_line(quality)}.

Each "without" column runs the same pairs with one step of the built-in swapper switched off
(`MeshSwapSettings`), so the column shows what that step buys.

{chr(10).join(table)}

Per pair (all steps):

| source | target | nearest identity | d(out, source) | d(out, target) | landmark error | seam | sharpness | swap ms |
|---|---|---|---|---|---|---|---|---|
{rows}
"""


def latency_table(result: dict) -> str:
    lines = [
        "| layout | p50 ms | p95 ms | p99 ms | max ms | in | out | dropped | output fps | p99 per window (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layout, run in result["runs"].items():
        lat = run["latency_ms"]
        lines.append(
            f"| {layout} | {lat['p50_ms']:.1f} | {lat['p95_ms']:.1f} | {lat['p99_ms']:.1f} | {lat['max_ms']:.1f} "
            f"| {run['frames_in']} | {run['frames_out']} | {run['dropped']} | {run['output_fps']:.1f} "
            f"| {', '.join(f'{v:.0f}' for v in run['p99_ms_by_window'])} |"
        )
    stages = result["runs"].get("split") or next(iter(result["runs"].values()))
    lines.append("")
    lines.append(
        "Per stage in the first layout (p50 / p95 ms): "
        + ", ".join(f"{stage} {h['p50_ms']:.2f} / {h['p95_ms']:.2f}" for stage, h in stages["stages_ms"].items())
    )
    if "serial_over_pipelined" in result:
        ratio = result["serial_over_pipelined"]
        lines.append("")
        lines.append(
            f"Serial baseline / pipelined (split) latency: p50 x{ratio['p50_ms']}, p95 x{ratio['p95_ms']}, "
            f"p99 x{ratio['p99_ms']}."
        )
    return "\n".join(lines)


def latency_section(runs: dict[str, dict]) -> str:
    parts = [
        f"""## Live latency

The test clip is made from a public-domain photo (640x480, 30 fps, a ~200 px face that sways,
zooms and turns): `{CLIP}`. The clip plays at a fixed pace as a stand-in camera, through the
real pipeline, into the null sink. Layouts: `split` (default: tracking and compositing in two
threads, so frame N+1's landmarks run while frame N is composited), `single` (one processing
thread), `serial` (the baseline: every frame queued and processed in turn, no dropping).
Latency is capture time to sink. JSON keys per layout: `frames_in`, `frames_out`, `dropped`,
`drop_rate`, `output_fps`, `latency_ms` {{count, mean_ms, p50_ms, p95_ms, p99_ms, max_ms}},
`stages_ms` {{stage: same keys}}, `p99_ms_by_window`; plus `input` and `serial_over_pipelined`.
"""
    ]
    titles = {
        "latency_30fps": ("30 fps, 30 s per layout", "--fps 30 --seconds 30"),
        "latency_stall": (
            "30 fps with a 100 ms stall every 30 frames, 60 s per layout",
            "--fps 30 --seconds 60 --stall-ms 100 --stall-every 30",
        ),
        "latency_100fps": ("100 fps (more than one core can process), 20 s per layout", "--fps 100 --seconds 20"),
    }
    for name, result in runs.items():
        title, flags = titles[name]
        parts.append(f"""### {title}

```bash
swapline bench latency --source tests/data/obama.jpg --input bench-clip.mp4 {flags} --json benchmarks/results/{name}.json
```

Machine: {machine_line(result)}.

{latency_table(result)}
""")
    parts.append("""### Reading these

- At 30 fps the whole per-frame work (~16 ms) fits in one frame period (33 ms): every layout
  meets p95 <= 40 ms, p99 <= 60 ms, 30 fps out with no drops, and the serial baseline is as
  fast as the pipeline. Bounded hand-offs matter when work exceeds the frame period.
- With 100 ms stalls, p99 stays at the stall plus a frame or two (<= 166 ms, stall + 2 frame
  periods) in every 10 s window: no growth. The split layout absorbs a stall in its queues
  (late frames, no drops); the single layout drops the backlog instead.
- At 100 fps (more than the CPU can process) the serial baseline queues every frame: its latency
  grows without bound (seconds after a few seconds). The pipeline drops stale frames and stays
  bounded. The split layout uses the second core and delivers more frames per second than the
  single layout (the committed run above; repeated runs of the same command gave 75-95 fps for
  split against 67-75 for single), at the cost of about two queued frames of latency when
  saturated. Split is the default.
""")
    return "\n".join(parts)


def video_section(video: dict) -> str:
    inp, st = video["input"], video.get("stability", {})
    stages = ", ".join(f"{k} {v:.1f}" for k, v in video["swap"]["stages_ms"].items())
    return f"""## Video files

```bash
swapline bench clip --photo tests/data/biden2.jpg --out bench-720p.mp4 --size 1280x720 --face-px 260 --seconds 10 --audio-hz 440
swapline bench video --source tests/data/obama.jpg --input bench-720p.mp4 --still tests/data/biden2.jpg --json benchmarks/results/video_720p.json
```

{inp["width"]}x{inp["height"]} at {inp["fps"]:g} fps, {inp["frames"]} frames, one face, x264 preset {inp["preset"]}, crf {inp["crf"]},
with an AAC track. Machine: {machine_line(video)}.

| run | seconds | fps |
|---|---|---|
| swap: the whole job (decode, track, swap, label, encode, join with audio) | {video["swap"]["seconds"]:.2f} | {video["swap"]["fps"]:.1f} |
| floor: decode + encode with the same settings, no processing | {video["floor"]["seconds"]:.2f} | {video["floor"]["fps"]:.1f} |

Swap time / floor time: **{video["swap_over_floor"]:.2f}x** (target <= 2.0x); swap throughput
{video["swap"]["fps"]:.1f} fps (target >= 30). CPU time per frame, summed over threads (ms): {stages}.

Stability ({st.get("clip", "n/a")}): mean frame-to-frame landmark movement measured by FaceMesh
on the input {st.get("input_jitter_px", float("nan")):.3f} px, on the output {st.get("output_jitter_px", float("nan")):.3f} px
(target: output <= input + 0.5 px). The swap uses One Euro-filtered landmarks, so the pasted face
is steadier than the raw landmarks.
"""


def neural_section(neural: dict) -> str:
    rows = "\n".join(f"| {k} | {v['median_ms']:.2f} | {v['max_ms']:.2f} |" for k, v in neural["stages_ms"].items())
    return f"""## Neural path (stand-in generator)

```bash
swapline bench neural --source tests/data/obama.jpg --target tests/data/biden2.jpg --frames 5 --json benchmarks/results/neural_cpu.json
```

The generator is a stand-in with inswapper_128's inputs and outputs and about its compute
({neural["generator_gflops"]} GFLOPs per frame: nine 3x3 convolutions of 256 channels at 128x128),
random weights, built at run time (no download). One 640x480 frame, one face, {neural["frames"]}
frames, provider {neural["provider"]}, all cores for the generator. Machine: {machine_line(neural)}.

| stage | median ms | max ms |
|---|---|---|
{rows}

Source registration (ArcFace stand-in + latent, once per source): {neural["source_registration_ms"]:.1f} ms.
On this 2-core CPU the generator is the whole cost: a neural swapper is an offline (video file)
tool here, not a live one; live mode uses the mesh swapper. No GPU was lent to the session that
made these numbers, so the CUDA and TensorRT rows are still to be measured: run the same command
with `--providers CUDAExecutionProvider,CPUExecutionProvider` (or TensorRT first) on a GPU machine.
"""


def main() -> None:
    sections = [
        """# Benchmarks

Every figure here was printed by a committed command on the project's reference machine kind
(2 CPU cores, 24 GB, no GPU). Raw results, with the machine description, are in
`benchmarks/results/`; this page is rendered from them by `python benchmarks/render.py`.
"""
    ]
    if speed := load("speed"):
        sections.append(speed_section(speed))
    if quality := load("quality"):
        sections.append(quality_section(quality))
    if video := load("video_720p"):
        sections.append(video_section(video))
    if neural := load("neural_cpu"):
        sections.append(neural_section(neural))
    latency = {n: r for n in ("latency_30fps", "latency_stall", "latency_100fps") if (r := load(n))}
    if latency:
        sections.append(latency_section(latency))
    (ROOT / "BENCHMARKS.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
