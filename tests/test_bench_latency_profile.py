"""run_latency's opt-in frame trace: every delivered frame's timeline, consistent with the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from swapline.bench.clips import make_clip
from swapline.bench.latency import run_latency

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    clip = make_clip(DATA / "biden2.jpg", tmp_path_factory.mktemp("trace") / "clip.mp4", (320, 240), 15.0, 1.0, 110)
    traces: dict = {}
    report = run_latency(DATA / "obama.jpg", clip, 15.0, 1.2, layouts=("split", "serial"), gap_rounds=0, traces=traces)
    return report, traces


def test_report_keeps_its_keys(traced):
    report, traces = traced
    assert set(report) == {"input", "runs", "serial_over_pipelined"}
    assert set(traces) == {"split", "serial"}


@pytest.mark.parametrize("layout", ["split", "serial"])
def test_one_row_per_delivered_frame_and_the_same_latencies(traced, layout):
    report, traces = traced
    run, rows = report["runs"][layout], traces[layout].rows()
    assert len(rows) == run["frames_out"] > 5
    latencies = sorted(r["latency_ms"] for r in rows)
    # the trace notes a frame inside the sink's write; the live run's histogram after the write returns,
    # so the two differ by at most the output stage's time (however long a busy machine stalls there)
    hist_max = run["latency_ms"]["max_ms"]
    output_max = run["stages_ms"]["output"]["max_ms"] if "output" in run["stages_ms"] else 0.0
    assert hist_max - output_max - 0.01 <= latencies[-1] <= hist_max + 0.01
    assert sum(1 for r in rows if "swap" in r["timings"]) >= len(rows) // 2  # the photo's face was swapped


@pytest.mark.parametrize("layout", ["split", "serial"])
def test_stage_spans_lie_between_release_and_delivery_in_order(traced, layout):
    _, traces = traced
    for row in traces[layout].rows():
        spans = sorted(row["stages"].values(), key=lambda s: s["start_ms"])
        assert spans, row
        released = row["due_ms"] + row["released_late_ms"]
        assert spans[0]["start_ms"] >= released - 0.01
        assert spans[-1]["end_ms"] <= row["due_ms"] + row["latency_ms"] + 0.01
        for before, after in zip(spans, spans[1:], strict=False):
            assert before["end_ms"] <= after["start_ms"] + 0.01
        for span in spans:
            assert 0 <= span["cpu_ms"] <= span["end_ms"] - span["start_ms"] + 1.0  # one thread's CPU, not more


def test_split_runs_track_and_compose_on_two_threads_serial_on_one(traced):
    _, traces = traced
    split = traces["split"].rows()
    assert all(set(r["stages"]) == {"track", "compose"} for r in split)
    assert {r["stages"]["track"]["thread"] for r in split}.isdisjoint({r["stages"]["compose"]["thread"] for r in split})
    serial = traces["serial"].rows()
    assert all(set(r["stages"]) == {"process"} for r in serial)
    assert len({r["stages"]["process"]["thread"] for r in serial}) == 1
