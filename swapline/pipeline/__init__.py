"""Pipelines: the swap engine and the jobs built on it (still images, video, live)."""

from swapline.pipeline.engine import EngineSettings, FrameResult, SwapEngine
from swapline.pipeline.image_job import ImageSwapReport, swap_image_file
from swapline.pipeline.timing import StageTimer

__all__ = ["EngineSettings", "FrameResult", "ImageSwapReport", "StageTimer", "SwapEngine", "swap_image_file"]
