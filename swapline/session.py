"""SwapSession: the one engine behind stills, video files and live feeds.

Built once from SwapSettings, it owns the models (detector, landmarks, identity encoder, swapper,
enhancer) and the label. Every mode is a thin loop around three calls:

- register_source(image): the source face, prepared once;
- faces in a frame: find_faces(image) for a still, or a stream() (tracking, cut detection,
  hysteresis, smoothing) for video and live, both ending in the same select();
- compose(frame, faces, source): swap the chosen faces, enhance, stamp the label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from swapline.components import build_detector, build_enhancer, build_identity_encoder, build_swapper
from swapline.errors import SwaplineError
from swapline.faces import AnalyserSettings, FaceAnalyser, FaceMeshLandmarker, FaceTracker, TrackerSettings
from swapline.faces.face import Face
from swapline.faces.hands import HandFinder, HandTracker
from swapline.faces.landmarks import Roi
from swapline.faces.selection import FaceSelector, ReferenceMatcher
from swapline.faces.stream import FaceStream
from swapline.faces.tracker import FaceWorkers, footprint, independent_groups
from swapline.models.store import ModelStore
from swapline.pipeline.timing import StageTimer
from swapline.runtime import SessionFactory, shared_sessions
from swapline.settings import BLAZEFACE, SwapSettings
from swapline.swap.mesh_swapper import MeshSwapper
from swapline.swap.skin import SkinTracker
from swapline.trust import LabelStamp, provenance_record
from swapline.trust.watermark import Payload, Watermarker, job_id_now

log = logging.getLogger("swapline.session")


# How far around a face (x its size) a swap may read or write, for swappers that do not say:
# neural swappers paste back an aligned crop, enhancers a larger one.
_WIDE_MARGIN = 1.0


def source_notes(registered) -> list[str]:
    """The swapper's advice on a registered source photo (the built-in swapper's: glasses it
    will copy); none from swappers that give none."""
    return list(getattr(registered, "notes", ()))


def _swap_margin(swapper, enhancing: bool) -> float:
    """The mesh swapper works inside its crop margin (its faces' hands were found before any
    swap); anything else gets the wide margin."""
    margin = getattr(getattr(swapper, "settings", None), "crop_margin", None)
    if enhancing or getattr(swapper, "name", "") != "mesh" or not isinstance(margin, float):
        return _WIDE_MARGIN
    return margin


@dataclass
class FrameResult:
    faces_found: int
    faces_swapped: int
    faces: list[Face]


class SwapSession:
    """Models loaded once; every output it composes carries the label."""

    def __init__(
        self,
        settings: SwapSettings | None = None,
        sessions: SessionFactory | None = None,
        store: ModelStore | None = None,
    ):
        """store: where registry models come from (give one with progress/notice callbacks)."""
        self.settings = s = settings or SwapSettings()
        self.sessions = sessions or shared_sessions(s.runtime)
        self.store = store or ModelStore(offline=s.models.offline)
        self.detector = build_detector(s.models, s.detector, self.store, self.sessions)
        # Stills also run a finer pass for small faces (BlazeFace only; the others see 640 px anyway).
        still_detector = self.detector
        if s.models.detector in BLAZEFACE:
            still_detector = build_detector(s.models, replace(s.detector, fine_pass=True), self.store, self.sessions)
        self.landmarker = FaceMeshLandmarker(self.sessions)
        self.analyser = FaceAnalyser(AnalyserSettings(detector=s.detector), self.sessions, still_detector)
        self._swapper = build_swapper(s.models, s.swapper, self.store, self.sessions)
        # per-face work of one frame (landmarks, far-apart swaps), shared by streams and compose
        self._face_workers = FaceWorkers(s.face_workers)
        # thermal light mode: the mesh swapper without its costliest step
        self._light_swapper = (
            build_swapper(s.models, replace(s.swapper, match_lighting=False), self.store, self.sessions)
            if s.models.swapper == "mesh"
            else self._swapper
        )
        self._enhancer = build_enhancer(s.models, self.store, self.sessions)
        # hands in front of the faces stay in front, whichever swapper (and the enhancer): looked
        # for by a feed's HandTracker, or here in compose for a still's faces
        self.hand_finder = HandFinder(self.sessions) if s.swapper.hands else None
        self.label = LabelStamp(s.label)
        self.marker = Watermarker(s.mark)
        self.mark_payload = Payload(job_id=job_id_now())  # one job id per session: ties outputs to a run
        self._matcher = self._reference_matcher() if s.faces.mode == "reference" else None

    # -- the source and the faces --------------------------------------------------------------

    @property
    def swapper_name(self) -> str:
        return self._swapper.name + (f"+{self._enhancer.name}" if self._enhancer else "")

    def find_faces(self, image: np.ndarray) -> list[Face]:
        """Every face in a still, with landmarks, largest first."""
        return self.analyser.faces(image)

    def register_source(self, image: np.ndarray, name: str = "source", advise: bool = True):
        """The largest face of the source photo, prepared once for every frame after. advise:
        log the swapper's notes on the photo (e.g. glasses it will copy) as warnings naming it."""
        faces = self.find_faces(image)
        if not faces:
            raise SwaplineError(f"{name}: no face found in the source image")
        registered = self._swapper.register(image, faces[0])
        for note in source_notes(registered) if advise else ():
            log.warning("%s: %s", name, note)
        return registered

    def _reference_matcher(self) -> ReferenceMatcher:
        from swapline.io import read_image

        path = self.settings.faces.reference
        image = read_image(path).pixels
        faces = self.find_faces(image)
        if not faces:
            raise SwaplineError(f"{path}: no face found in the reference")
        encoder, threshold = build_identity_encoder(self.settings.models, self.store, self.sessions)
        return ReferenceMatcher(encoder, encoder.encode(image, faces[0]), threshold)

    def selector(self) -> FaceSelector:
        """A selector with its own memory of per-track decisions (one per stream)."""
        faces = self.settings.faces
        return FaceSelector(faces.mode, faces.max_faces, self._matcher.fresh() if self._matcher else None)

    def select(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """The faces of a still to swap (all, largest or the reference person)."""
        return self.selector().select(image, faces)

    def stream(self, live: bool = False) -> FaceStream:
        """Faces over time for one video or camera feed; the models are shared, the state is not.
        live, with the models on a GPU: the periodic look for new faces runs aside
        (TrackerSettings.detect_aside), so no frame waits for it (the GPU does the work; the
        frame's thread would only wait). Not on a CPU: its cores are busy with the track and
        compose stages, and a third thread lengthened the tail (bench latency on 2 cores: split
        p99 30.7 -> 39.7 ms). A file's frames stay a function of the frames before them."""
        s = self.settings
        tracker = FaceTracker(
            self.detector,
            self.landmarker,
            TrackerSettings(
                max_faces=s.faces.max_faces or s.detector.max_faces,
                max_misses=s.faces.hold_frames,
                detect_aside=live and self.sessions.gpu,
            ),
            self._face_workers,
        )
        finder = self.hand_finder
        return FaceStream(
            tracker,
            self.selector(),
            s.smoothing,
            s.scene_cut,
            s.faces.confirm_frames,
            s.faces.hold_frames,
            hands=HandTracker(finder) if finder is not None else None,
            skin=self._skin_tracker(),
        )

    def _skin_tracker(self) -> SkinTracker | None:
        """The built-in swapper's occluder rules read the skin's colour learned over a feed."""
        swapper = self._swapper
        if isinstance(swapper, MeshSwapper) and swapper.settings.target_occluders:
            return SkinTracker(swapper.mesh)
        return None

    # -- the output ----------------------------------------------------------------------------

    def compose(
        self,
        frame: np.ndarray,
        faces: list[Face],
        source,
        alpha: np.ndarray | None = None,
        light: bool = False,
        timings: dict[str, float] | None = None,
    ) -> int:
        """Swap the chosen faces (in place), enhance them, stamp the label; returns faces swapped."""
        timer = StageTimer()
        swapper = self._light_swapper if light else self._swapper

        def swap_in_order(group: list[Face]) -> int:
            done = 0
            for face in group:
                if swapper.swap(frame, face, source):
                    done += 1
                    if self._enhancer is not None:
                        self._enhancer.enhance(frame, face)
            return done

        if self.hand_finder is not None and any(face.hands is None for face in faces):
            with timer.stage("hands"):  # a still's faces: on the frame before any face is swapped
                faces = self._face_workers.map(self._with_hands(frame), faces)
        with timer.stage("swap"):
            # Faces whose swaps touch no common pixel run side by side; touching ones stay in
            # order in one group: the frame is bit for bit the one-by-one result.
            margin = _swap_margin(swapper, self._enhancer is not None)
            groups = independent_groups([footprint(face, margin) for face in faces])
            swapped = sum(self._face_workers.map(swap_in_order, [[faces[i] for i in g] for g in groups]))
        with timer.stage("mark"):  # before the label: the label's pixels stay exactly as rendered
            self.marker.embed(frame, self.mark_payload)
        with timer.stage("label"):
            self.label.apply(frame, alpha)
        if timings is not None:
            timings.update(timer.ms)
        return swapped

    def _with_hands(self, frame: np.ndarray):
        """face -> the face with its hands, for a still's faces (a feed's come with them)."""
        finder = self.hand_finder

        def find(face: Face) -> Face:
            if face.hands is not None:
                return face
            return face.replace(hands=tuple(hand.points for hand in finder.around_face(frame, face)))

        return find

    def swap_frame(
        self, frame: np.ndarray, source, alpha: np.ndarray | None = None, timer: StageTimer | None = None
    ) -> FrameResult:
        """A still: find, select, compose (in place). The label is never skipped."""
        timer = timer or StageTimer()
        with timer.stage("detect+landmarks"):
            faces = self.find_faces(frame)
        chosen = self.select(frame, faces)
        timings: dict[str, float] = {}
        swapped = self.compose(frame, chosen, source, alpha, timings=timings)
        for name, ms in timings.items():
            timer.ms[name] = timer.ms.get(name, 0.0) + ms
        return FrameResult(faces_found=len(faces), faces_swapped=swapped, faces=faces)

    def provenance(self, **extra: object) -> dict:
        """The provenance record written into every output's metadata."""
        mark = {"job_id": self.mark_payload.job_id, "version": self.mark_payload.version}
        mark["user_key"] = self.settings.mark.key is not None
        return provenance_record(
            method=f"face swap ({self.swapper_name})", label_text=self.settings.label.text, mark=mark, **extra
        )

    def sign(self, output: Path, ingredients: list[Path]) -> Path | None:
        """Add C2PA Content Credentials to a finished output file; None when signing is off or unavailable."""
        from swapline.trust.credentials import credentials_available, sign_file

        chosen = self.settings.credentials
        if chosen is None:
            return None
        if not credentials_available() and chosen.cert_chain is None:
            if not SwapSession._unsigned_said:
                log.warning("outputs are not C2PA-signed: pip install 'swapline[c2pa]' to add Content Credentials")
                SwapSession._unsigned_said = True
            return None
        return sign_file(output, [p for p in ingredients if p is not None], chosen)

    _unsigned_said = False  # the missing-extra notice is given once per process

    def warm_up(self, width: int = 640, height: int = 480) -> None:
        """First model calls allocate and plan (and on a GPU initialise CUDA): do them before frames flow."""
        blank = np.zeros((height, width, 3), np.uint8)
        self.detector.detect(blank)
        self.landmarker.run(blank, Roi(width / 2, height / 2, min(width, height) / 2, 0.0))
        warm = getattr(self._swapper, "warm_up", None)
        if warm is not None:
            warm()
        if self.hand_finder is not None:
            self.hand_finder.warm_up()
        self.marker.band_pattern(width, self.mark_payload)  # once per frame width
        self.label.apply(blank)
