"""The invisible mark: recovered from real photos after the attacks it must survive, never found
where it is not, and only with the right key."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import DATA, load

from swapline.errors import SwaplineError
from swapline.trust.mark import payload as code
from swapline.trust.watermark import Payload, Watermarker, WatermarkSettings

PHOTOS = ("obama.jpg", "biden2.jpg", "astronaut.png")
PAYLOAD = Payload(job_id=3_141_592_653)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


ATTACKS = {
    "jpeg75": lambda image: _jpeg(image, 75),
    "resize50": lambda image: cv2.resize(
        image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA
    ),
    "crop_left": lambda image: image[:, image.shape[1] // 10 :],
    "crop_top": lambda image: image[image.shape[0] // 10 :],
    "darker10": lambda image: cv2.convertScaleAbs(image, alpha=0.9),
}


@pytest.fixture(scope="module")
def marker() -> Watermarker:
    return Watermarker()


@pytest.fixture(scope="module")
def marked(marker) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """photo name -> (original, marked copy)."""
    result = {}
    for name in PHOTOS:
        original = load(name)
        copy = original.copy()
        marker.embed(copy, PAYLOAD)
        result[name] = (original, copy)
    return result


def test_payload_packs_into_48_bits_and_survives_bit_errors():
    packed = PAYLOAD.to_bytes()
    assert len(packed) * 8 == 48
    assert Payload.from_bytes(packed) == PAYLOAD
    assert Payload(version="0.1.7") == Payload(version="0.1")  # the mark keeps major.minor
    bits = code.encode(PAYLOAD)
    soft = 2.0 * bits - 1.0
    flipped = np.random.default_rng(0).choice(bits.size, 7, replace=False)
    soft[flipped] *= -0.3  # seven wrong bits, read with little confidence as noise leaves them
    assert code.decode(soft) == (PAYLOAD, 7)
    assert code.decode(np.random.default_rng(1).standard_normal(bits.size)) is None  # noise is no payload
    for bad in (dict(job_id=2**32), dict(tool="other"), dict(version="9.0")):
        with pytest.raises(SwaplineError):
            Payload(**bad)


def test_mark_format_is_pinned():
    """Marks already out there must stay readable: the code and the key's layout never drift."""
    from swapline.trust.mark.pattern import layout_for

    assert np.packbits(code.encode(PAYLOAD)).tobytes().hex() == "0101bb40e64d0eb1a355c9e870"
    layout = layout_for(None, code.CODE_BITS)
    assert layout.n_sync == 238 and layout.rows.size == 938
    assert layout.rows[:4].tolist() == [119, 124, 105, 127] and layout.cols[:4].tolist() == [14, 18, 4, 18]
    assert np.allclose(np.angle(layout.phase[:3]), [0.660804, -2.820456, -2.103479], atol=1e-6)


@pytest.mark.parametrize("name", PHOTOS)
def test_mark_is_invisible_by_psnr(marked, name):
    original, copy = marked[name]
    assert cv2.PSNR(original, copy) >= 40.0
    changed = copy.astype(int) - original.astype(int)
    inside = (original > 10).all(axis=2) & (original < 245).all(axis=2)  # no clipping there
    assert changed[inside].std() > 1.5  # the mark is really there...
    assert (changed[inside, 0] == changed[inside, 1]).all() and (changed[inside, 1] == changed[inside, 2]).all()
    # ...and only in the luma: the same change to B, G and R


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("name", PHOTOS)
def test_payload_recovered_after_attack(marker, marked, name, attack):
    report = marker.decode(ATTACKS[attack](marked[name][1]))
    assert report is not None and report.payload == PAYLOAD
    assert report.confidence >= report.threshold
    assert report.bits_corrected <= code.RADIUS


def test_payload_recovered_after_h264_crf28(marker, tmp_path):
    from swapline.bench.clips import make_clip
    from swapline.bench.watermark import h264

    clip = make_clip(DATA / "biden2.jpg", tmp_path / "clip.mp4", size=(640, 480), fps=30, seconds=1 / 3, face_px=200)
    import av

    with av.open(str(clip)) as source:
        frames = [frame.to_ndarray(format="bgr24") for frame in source.decode(video=0)]
    assert len(frames) == 10
    for frame in frames:
        marker.embed(frame, PAYLOAD)
    decoded = h264(frames, crf=28)
    report = marker.decode_frames(decoded)
    assert report is not None and report.payload == PAYLOAD and report.frames == 10


def test_nothing_found_in_unmarked_photos(marker, marked):
    for original, _ in marked.values():
        assert marker.decode(original) is None


def test_unmarked_peaks_behave_like_the_null_model(marked):
    """Random keys on an unmarked photo: the best of ~32k shifts is a few sigma, never the threshold."""
    original = marked["obama.jpg"][0]
    peaks = [Watermarker(WatermarkSettings(key=f"random-{i}")) for i in range(40)]
    analysed = peaks[0].analyse(original)
    z = np.array([m.peak([analysed]).z for m in peaks])
    assert z.max() < peaks[0].threshold
    assert 3.0 < np.median(z) < 5.5  # a mis-scaled statistic would hide false positives


def test_wrong_key_finds_nothing(marked):
    _, copy = marked["biden2.jpg"]
    assert Watermarker(WatermarkSettings(key="someone else")).decode(copy) is None
    own = Watermarker(WatermarkSettings(key="studio-7"))
    private = marked["biden2.jpg"][0].copy()
    own.embed(private, PAYLOAD)
    assert own.decode(private).payload == PAYLOAD
    assert Watermarker().decode(private) is None


def test_embed_writes_in_place_also_into_views(marker):
    frame = load("obama.jpg")
    original = frame.copy()
    view = frame[100:400, 50:550]  # not contiguous: OpenCV alone would write into a copy
    marker.embed(view, PAYLOAD)
    assert not np.array_equal(frame[100:400, 50:550], original[100:400, 50:550])
    assert np.array_equal(frame[:100], original[:100])
    assert marker.decode(np.ascontiguousarray(view)).payload == PAYLOAD
    with pytest.raises(SwaplineError):
        marker.embed(frame.astype(np.float32), PAYLOAD)


def test_settings_are_checked():
    with pytest.raises(SwaplineError):
        WatermarkSettings(strength=0)
    with pytest.raises(SwaplineError):
        WatermarkSettings(scales=())


def test_bench_reports_recovery_and_false_positives():
    from swapline.bench.watermark import run_watermark_bench, watermark_tables

    result = run_watermark_bench([DATA / "obama.jpg"], null_keys=3, repeats=3)
    photo = result["photos"]["obama.jpg"]
    assert photo["attacks"]["JPEG 50"]["recovered"] and photo["psnr_db"] >= 40
    assert result["false_positives"]["detections"] == 0 and result["false_positives"]["trials"] == 3
    assert set(result["speed"]) == {"640x480", "1280x720"}
    assert len(watermark_tables(result)) == 4
