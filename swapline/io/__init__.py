"""Reading and writing media; outputs are written to a temporary name, then renamed."""

from pathlib import Path

from swapline.io.images import LoadedImage, check_output_path, read_image, write_image
from swapline.io.images import read_provenance as read_image_provenance

__all__ = ["LoadedImage", "check_output_path", "read_image", "read_provenance", "write_image"]


def read_provenance(path: Path | str) -> dict | None:
    """The provenance record of any output swapline wrote (image or video), or None."""
    from swapline.io.video import is_video_path, read_video_provenance

    return read_video_provenance(path) if is_video_path(path) else read_image_provenance(path)
