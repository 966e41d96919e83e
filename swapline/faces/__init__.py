"""Finding faces: detection, landmarks, tracking, identity."""

from swapline.faces.analyser import AnalyserSettings, FaceAnalyser
from swapline.faces.detector import BlazeFaceDetector, DetectorSettings
from swapline.faces.face import Face
from swapline.faces.landmarks import FaceMeshLandmarker
from swapline.faces.tracker import FaceTracker, TrackerSettings

__all__ = [
    "AnalyserSettings",
    "BlazeFaceDetector",
    "DetectorSettings",
    "Face",
    "FaceAnalyser",
    "FaceMeshLandmarker",
    "FaceTracker",
    "TrackerSettings",
]
