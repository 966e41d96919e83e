"""The CLI as a user meets it: real processes, real files, one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from swapline.io import read_image, read_provenance
from swapline.trust import LabelSettings, has_label
from swapline.trust.label import render_label
from tests.conftest import DATA


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "swapline", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_swap_writes_a_labelled_image_and_reports_json(tmp_path):
    out = tmp_path / "result.png"
    result = run(
        "swap", "--source", DATA / "obama.jpg", "--target", DATA / "obama_and_biden.jpg", "--output", out, "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["faces_found"] >= 2 and summary["faces_swapped"] == summary["faces_found"]
    assert {"detect+landmarks", "swap", "label", "write"} <= set(summary["stages_ms"])
    image = read_image(out).pixels
    assert has_label(image)
    assert read_provenance(out)["ai_generated"] is True


def test_rgba_target_keeps_transparency(tmp_path):
    target = tmp_path / "rgba.png"
    rgba = Image.open(DATA / "biden.jpg").convert("RGBA")
    alpha = np.array(rgba)
    alpha[:20, :, 3] = 0
    Image.fromarray(alpha).save(target)
    out = tmp_path / "out.webp"
    assert run("swap", "-s", DATA / "obama.jpg", "-t", target, "-o", out).returncode == 0
    loaded = read_image(out)
    assert loaded.alpha is not None and has_label(loaded.pixels)
    h, w = loaded.alpha.shape
    label = render_label(LabelSettings(), w, h, "top-left")  # the label's second copy is opaque
    band = loaded.alpha[:20].copy()
    band[: label.y + label.alpha.shape[0], : label.x + label.alpha.shape[1]] = 0
    assert band.max() == 0 and loaded.alpha[:20, : label.x + label.alpha.shape[1]].max() == 255


def _blank(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), (120, 130, 140)).save(path)
    return path


def _corrupt(tmp_path):
    path = tmp_path / "corrupt.jpg"
    path.write_bytes((DATA / "obama.jpg").read_bytes()[:400])
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file"),
        ("corrupt", "not a readable image"),
        ("unsupported", "unsupported image format"),
        ("no_face_source", "no face found in the source"),
        ("no_face_target", "no face found in the target"),
        ("output_is_input", "would overwrite an input"),
    ],
)
def test_bad_input_gives_one_line_and_no_output(tmp_path, case, message):
    source, target = DATA / "obama.jpg", DATA / "biden.jpg"
    out = tmp_path / "out.png"
    if case == "missing":
        source = tmp_path / "nobody.jpg"
    elif case == "corrupt":
        target = _corrupt(tmp_path)
    elif case == "unsupported":
        target = DATA / "README.md"
    elif case == "no_face_source":
        source = _blank(tmp_path)
    elif case == "no_face_target":
        target = _blank(tmp_path)
    elif case == "output_is_input":
        out = tmp_path / "target.jpg"
        out.write_bytes((DATA / "biden.jpg").read_bytes())
        target = out
    before = out.read_bytes() if out.exists() else None
    result = run("swap", "-s", source, "-t", target, "-o", out)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    named = {
        "missing": source,
        "corrupt": target,
        "unsupported": target,
        "no_face_source": source,
        "no_face_target": target,
        "output_is_input": out,
    }[case]
    assert str(named) in lines[0]
    if before is None:
        assert not out.exists()
    else:
        assert out.read_bytes() == before
    assert not list(tmp_path.glob("*.partial"))


def test_demo_runs_on_bundled_samples(tmp_path):
    result = run("demo", "--out", tmp_path / "demo", "--quiet")
    assert result.returncode == 0, result.stderr
    outputs = sorted((tmp_path / "demo").glob("*.jpg"))
    assert len(outputs) == 3
    assert all(has_label(read_image(p).pixels) for p in outputs)


def test_models_list():
    result = run("models", "list")
    assert result.returncode == 0 and "face_landmark" in result.stdout


def test_usage_errors_are_one_line():
    result = run("swap", "--target", DATA / "obama.jpg")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "required" in lines[0] and "--help" in lines[0]


def test_built_in_swapper_options_reach_the_swap(tmp_path):
    # --keep-beard keeps the bearded target's chin; a strength outside 0..1 is one clear line
    target = DATA / "dev" / "greg_casar_1.jpg"
    outputs = []
    for extra in ((), ("--keep-beard",)):
        out = tmp_path / f"out{len(outputs)}.png"
        result = run("swap", "--source", DATA / "astronaut.png", "--target", target, "--output", out, *extra)
        assert result.returncode == 0, result.stderr
        outputs.append(read_image(out).pixels.astype(int))
    assert np.abs(outputs[0] - outputs[1]).max(axis=2).mean() > 0.5
    bad = run("swap", "-s", DATA / "obama.jpg", "-t", target, "-o", tmp_path / "x.png", "--shape-strength", "2")
    assert bad.returncode != 0 and "--shape-strength 2: must be between 0 and 1" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.png").exists()
