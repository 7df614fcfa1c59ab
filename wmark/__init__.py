"""wmark: robust invisible watermarking for images and video."""
from wmark.api import Detection, Extraction, Watermarker, load
from wmark.errors import WmarkError

__all__ = ["Detection", "Extraction", "Watermarker", "WmarkError", "load"]
