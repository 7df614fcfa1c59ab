"""Defaults that the command line's options and the library share, free of torch so that ``wmark --help`` and
the listing commands start fast. Each is written here once."""

DEFAULT_FPR = 1e-6
"""Default false-positive rate for detection: one unmarked image in a million flagged."""

VIDEO_CODEC = "h264"
"""Codec of a marked video (:data:`wmark.io.video.ENCODERS` lists the others)."""

VIDEO_CRF = 18
"""Constant rate factor of a marked video: visually lossless for x264, so the mark, not the encoder, sets the
quality."""

VIDEO_PRESET = "medium"
"""x264/x265 speed preset of a marked video."""

FRAME_BATCH = 16
"""Video frames per model call."""
