"""Liveness: a photo held up to the camera is refused; a face that blinks and nods passes; the stage gates swaps."""

from dataclasses import replace

import av
import cv2
import numpy as np
import pytest

from swapline.bench.clips import write_clip
from swapline.bench.liveness import (
    LIVE_SCRIPTS,
    MOTIONS,
    SIZE,
    LiveScript,
    check_clip,
    check_landmarks,
    live_landmarks,
    liveness_tables,
    photo_attack_frames,
    plane_homography,
    run_liveness_bench,
)
from swapline.errors import SwaplineError
from swapline.faces.tracker import face_from_landmarks
from swapline.io import read_image
from swapline.pipeline.frames import Frame
from swapline.pipeline.rate import AdaptiveRate, AdaptiveRateSettings
from swapline.pipeline.stages import ComposeStage, TrackStage
from swapline.pipeline.thermal import ThermalGovernor
from swapline.session import SwapSession
from swapline.settings import ModelChoices, SwapSettings
from swapline.trust import has_label
from swapline.trust.liveness import (
    LivenessCheck,
    LivenessSettings,
    LivenessStage,
    eye_openness,
    fit_pose,
)
from tests.conftest import DATA

FPS = 15.0
SHORT = LivenessSettings(blink_timeout_s=3.0, nod_timeout_s=3.0)  # attacks fail sooner: faster tests


@pytest.fixture(scope="module")
def faces(analyser):
    """name -> (pixels, largest face) for the two photos the attacks are made from."""
    out = {}
    for name in ("obama.jpg", "biden2.jpg"):
        pixels = read_image(DATA / name).pixels
        out[name] = (pixels, analyser.faces(pixels)[0])
    return out


def encoded(frames, path):
    """The frames after an H.264 round trip, as a camera or a recording would deliver them."""
    frames = list(frames)
    write_clip(frames, path, FPS, SIZE)
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def as_faces(frames, track_id=0):
    return [(t, [face_from_landmarks(p, 1.0).replace(track_id=track_id)]) for t, p in frames]


# -- the measurements ----------------------------------------------------------------------------


def test_openness_ignores_a_squashed_face_but_sees_closed_eyelids(faces):
    landmarks = faces["obama.jpg"][1].landmarks
    squashed = landmarks.copy()
    squashed[:, 1] *= 0.7  # a photo tilted back about 45 degrees: everything 30 % shorter
    open_r, open_l = eye_openness(landmarks)
    flat_r, flat_l = eye_openness(squashed)
    # the plain eye aspect ratio would fall by 30 % here, as deep as a lazy blink
    assert flat_r == pytest.approx(open_r, rel=0.1) and flat_l == pytest.approx(open_l, rel=0.1)
    shut = next(p for t, p in live_landmarks(landmarks, LiveScript("", blinks=((0.0, 0.6),), jitter=0.0)) if t >= 0.3)
    shut_r, shut_l = eye_openness(shut)
    assert shut_r < 0.5 * open_r and shut_l < 0.5 * open_l


def test_a_plane_is_flat_and_a_turned_head_is_not(faces):
    """The two explanations of landmark motion: a homography fits a plane, the rigid 3-D fit a head."""
    landmarks = faces["biden2.jpg"][1].landmarks
    warp = plane_homography(SIZE, 0.0, 30.0)
    planar = landmarks.copy()
    planar[:, :2] = cv2.perspectiveTransform(landmarks[None, :, :2].astype(np.float64), warp)[0]
    flat = fit_pose(landmarks, planar)
    assert flat.flat_residual < 0.002 < 0.01 < flat.rigid_residual

    turned = live_landmarks(landmarks, LiveScript("", moves=(("yaw", 0.0, 2.0, 20.0),), seconds=1.0, jitter=0.0))
    reference, head = turned[0][1], turned[-1][1]  # 0 and 20 degrees of yaw
    fit = fit_pose(reference, head)
    assert abs(fit.yaw) > 15 and abs(fit.pitch) < 5
    assert fit.rigid_residual < 0.01 < 0.02 < fit.flat_residual


# -- (a) photo attacks through the real tracker ----------------------------------------------------


@pytest.mark.parametrize("name", ["obama.jpg", "biden2.jpg"])
def test_a_photo_held_up_and_moved_never_blinks(faces, name, tmp_path):
    pixels, face = faces[name]
    for motion in ("sway", "tilt"):
        frames = encoded(photo_attack_frames(pixels, face.box, MOTIONS[motion], FPS, 3.2), tmp_path / f"{motion}.mp4")
        verdict = check_clip(LivenessCheck(SHORT), iter(frames), FPS)
        assert not verdict.accepted and verdict.reason == "no blink in 3 s", (motion, verdict)


@pytest.mark.parametrize("name", ["obama.jpg", "biden2.jpg"])
def test_a_photo_turned_like_a_head_looks_like_a_photo(faces, name, tmp_path):
    """The nod step alone: the tilted photo reads as a turned head, but its landmarks moved as one plane."""
    pixels, face = faces[name]
    frames = encoded(photo_attack_frames(pixels, face.box, MOTIONS["turn"], FPS, 3.5), tmp_path / "turn.mp4")
    verdict = check_clip(LivenessCheck(replace(SHORT, steps=("nod",))), iter(frames), FPS)
    assert not verdict.accepted and verdict.reason == "looks like a photo"


# -- (b) live faces ------------------------------------------------------------------------------


@pytest.mark.parametrize("script", LIVE_SCRIPTS, ids=lambda s: s.name)
def test_a_face_that_blinks_then_nods_or_turns_passes(faces, script):
    frames = live_landmarks(faces["biden2.jpg"][1].landmarks, script, seed=3)
    verdict = check_landmarks(LivenessCheck(), frames)
    assert verdict.accepted, verdict
    last_move = max(start + length for _, start, length, _ in script.moves)
    assert last_move - 0.5 < verdict.decided_at_s < last_move + 0.5  # verified when the head came back


@pytest.mark.parametrize(
    ("blink", "moves", "counts"),
    [
        ((1.0, 0.2), (), True),
        ((1.0, 0.2), (("pitch", 0.8, 0.8, 25.0),), False),  # eyes "shut" while the face tilts: a photo tilted back
        ((1.0, 1.5), (), False),  # too slow for a blink
    ],
)
def test_a_blink_is_quick_and_the_head_holds_still(faces, blink, moves, counts):
    script = LiveScript("", blinks=(blink,), moves=moves, seconds=3.0)
    check = LivenessCheck()
    for t, found in as_faces(live_landmarks(faces["obama.jpg"][1].landmarks, script)):
        state = check.update(found, t)
    assert (state.step == "nod") is counts


def test_prompts_follow_the_steps(faces):
    check = LivenessCheck()
    assert check.update([], 0.0).prompt == "Look at the camera"
    script = LiveScript("", blinks=((1.0, 0.2),), moves=(("pitch", 2.0, 1.2, 18.0),))
    prompts = {}
    for t, found in as_faces(live_landmarks(faces["obama.jpg"][1].landmarks, script)):
        prompts.setdefault(check.update(found, t).prompt, t)
    assert list(prompts) == ["Blink", "Now nod your head", "Verified"]
    assert 1.0 < prompts["Now nod your head"] < 1.4 and check.passed


def test_a_nod_before_the_blink_does_not_count(faces):
    script = LiveScript("", blinks=((3.0, 0.2),), moves=(("pitch", 1.0, 1.2, 18.0),), seconds=6.0)
    check = LivenessCheck()
    for t, found in as_faces(live_landmarks(faces["obama.jpg"][1].landmarks, script)):
        state = check.update(found, t)
    assert state.step == "nod" and not state.passed


# -- (c) timeouts, retries, another face ---------------------------------------------------------


def test_no_blink_times_out_with_the_reason_then_starts_again(faces):
    still = live_landmarks(faces["obama.jpg"][1].landmarks, LiveScript("", seconds=12.0), seed=1)
    check = LivenessCheck()
    states = {t: check.update(found, t + 5.0) for t, found in as_faces(still)}  # clock starts at the first face
    failed = [t for t, s in states.items() if s.failed]
    assert failed and failed[0] == pytest.approx(8.0, abs=0.05)
    assert states[failed[0]].prompt == "Failed: no blink in 8 s"
    assert states[failed[0]].reason == "no blink in 8 s"
    later = states[min(states, key=lambda k: abs(k - 11.2))]
    assert not later.failed and later.prompt == "Blink"  # the failure is shown 3 s, then a fresh try


def test_no_nod_times_out_with_the_reason(faces):
    script = LiveScript("", blinks=((1.0, 0.2),), seconds=10.0)
    check = LivenessCheck(LivenessSettings(retry_after_s=None))
    for t, found in as_faces(live_landmarks(faces["obama.jpg"][1].landmarks, script)):
        state = check.update(found, t)
    assert state.failed and state.reason == "no nod or turn in 8 s" and state.prompt == "Failed: no nod or turn in 8 s"


def test_another_face_must_verify_itself(faces):
    script = LiveScript("", blinks=((1.0, 0.2),), moves=(("yaw", 2.0, 1.4, 25.0),), seconds=4.0)
    frames = live_landmarks(faces["obama.jpg"][1].landmarks, script)
    check = LivenessCheck()
    for t, found in as_faces(frames):
        check.update(found, t)
    assert check.passed
    _, last = frames[-1]
    assert check.update(as_faces([(0.0, last)], track_id=7)[0][1], 4.5).passed  # the verified face may blink out
    assert check.update(as_faces([(0.0, last)], track_id=7)[0][1], 6.5).prompt == "Blink"  # gone 2.5 s: start again
    with pytest.raises(SwaplineError):
        LivenessSettings(steps=("blink", "smile"))


# -- (d) the live stage --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swapping(faces):
    """A session with obama.jpg as the source face."""
    session = SwapSession(SwapSettings(models=ModelChoices(detector="short")))
    return session, session.register_source(faces["obama.jpg"][0], "obama.jpg")


def run_stages(swapping, check, images, start):
    """The live stages, in order on this thread: track wrapped by the liveness gate, then compose."""
    session, registered = swapping
    governor = ThermalGovernor(sensor=lambda: None)
    track = TrackStage(session.stream(), AdaptiveRate(AdaptiveRateSettings(enabled=False)), governor)
    gate = LivenessStage(track, check)
    outputs = []
    for seq, image in enumerate(images):
        frame = Frame(seq, start + seq / FPS, image.copy())
        for stage in (gate, ComposeStage(session, registered, governor)):
            frame = stage.process(frame)
        outputs.append(frame)
    return outputs, track.stream


def verified(landmarks, track_id=0):
    """A check passed by a live face on track `track_id` (the stream's first face gets 0), ending at 4 s."""
    check = LivenessCheck()
    script = LiveScript("", blinks=((1.0, 0.2),), moves=(("pitch", 2.0, 1.2, 18.0),), seconds=4.0)
    for t, found in as_faces(live_landmarks(landmarks, script), track_id):
        check.update(found, t)
    assert check.passed and check.verified_track == track_id
    return check


def change(a, b, region):
    return float(np.abs(a[region].astype(int) - b[region].astype(int)).mean())


def test_the_stage_prompts_and_does_not_swap_until_verified(faces, swapping):
    pixels, face = faces["biden2.jpg"]
    images = list(photo_attack_frames(pixels, face.box, MOTIONS["sway"], FPS, 1.0))
    band, centre = np.s_[40:90, 220:420], np.s_[200:300, 270:370]  # where the prompt goes; the face

    waiting, _ = run_stages(swapping, LivenessCheck(), images, 0.0)
    for image, frame in zip(images, waiting, strict=True):
        assert frame.faces == [] and change(image, frame.image, centre) < 4.0  # not swapped (the mark: ~2)
        assert change(image, frame.image, band) > 20  # the prompt
    assert all(has_label(frame.image) for frame in waiting[::5])

    swapped, _ = run_stages(swapping, verified(face.landmarks), images, 4.1)
    for image, frame in zip(images, swapped, strict=True):
        assert frame.faces and change(image, frame.image, centre) > 8  # swapped
        assert change(image, frame.image, band) < 4  # no prompt (the invisible mark: ~2 levels)
    assert all(has_label(frame.image) for frame in swapped[::5])


def test_once_verified_only_that_face_is_swapped(faces, swapping):
    """A second face in view (a photo held up beside the person) is left alone."""
    both = cv2.resize(read_image(DATA / "obama_and_biden.jpg").pixels[150:500, 380:940], (640, 400))
    outputs, stream = run_stages(swapping, verified(faces["obama.jpg"][1].landmarks), [both] * 3, 4.1)
    tracks = {t.track_id: t.face for t in stream.tracker.tracks}
    assert len(tracks) == 2 and all([f.track_id for f in frame.faces] == [0] for frame in outputs)
    for track_id, face in tracks.items():
        x1, y1, x2, y2 = face.box.astype(int)
        inner = np.s_[y1 + (y2 - y1) // 4 : y2 - (y2 - y1) // 4, x1 + (x2 - x1) // 4 : x2 - (x2 - x1) // 4]
        moved = change(both, outputs[-1].image, inner)
        assert moved > 8 if track_id == 0 else moved < 4, (track_id, moved)  # unswapped: only the mark


# -- the benchmark -------------------------------------------------------------------------------


def test_bench_counts_attacks_and_live_faces(tmp_path, faces):
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / "obama.jpg").write_bytes((DATA / "obama.jpg").read_bytes())
    result = run_liveness_bench(folder, SHORT, fps=FPS, motions=("tilt",))
    by_kind = {row["kind"]: row for row in result["summary"]}
    live = by_kind["live (animated landmarks)"]
    assert live["true_accept"] == len(LIVE_SCRIPTS) and live["false_reject"] == 0
    for kind in ("photo attack", "photo attack, nod step only"):
        assert by_kind[kind]["true_reject"] == 1 and by_kind[kind]["false_accept"] == 0
    assert by_kind["photo attack, nod step only"]["reasons"] == {"looks like a photo": 1}
    assert len(liveness_tables(result)) == 3
