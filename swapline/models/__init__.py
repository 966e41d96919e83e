"""Built-in ONNX models (converted from MediaPipe by tools/convert_mediapipe_models.py)."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent

BUILTIN_MODELS = {
    "face_detection_short_range": "BlazeFace short range (faces within ~2 m), 128x128 input",
    "face_detection_full_range": "BlazeFace full range (faces within ~5 m), 192x192 input",
    "face_landmark": "FaceMesh, 468 landmarks and face presence, 192x192 input",
    # the same detectors rewritten to take any input size (tools/make_any_size_models.py)
    "face_detection_short_range_any_size": "BlazeFace short range, any input size (multiples of 16)",
    "face_detection_full_range_any_size": "BlazeFace full range, any input size (multiples of 32)",
    # hands in front of a face (the built-in swapper's hands)
    "palm_detection_lite_any_size": "BlazePalm lite, any input size (multiples of 32; run at 128x128)",
    "hand_landmark_lite": "hand landmarks lite, 21 points and hand presence, 224x224 input",
}


def builtin_model_path(name: str) -> Path:
    """Path of a bundled model file; these ship in the package, nothing is downloaded."""
    if name not in BUILTIN_MODELS:
        raise KeyError(f"unknown built-in model {name!r}")
    return MODELS_DIR / f"{name}.onnx"
