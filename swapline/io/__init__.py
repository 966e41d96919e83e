"""Reading and writing media; outputs are written to a temporary name, then renamed."""

from swapline.io.images import LoadedImage, check_output_path, read_image, read_provenance, write_image

__all__ = ["LoadedImage", "check_output_path", "read_image", "read_provenance", "write_image"]
