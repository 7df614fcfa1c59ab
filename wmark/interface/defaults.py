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

FRAME_GROUP = 8
"""Consecutive video frames averaged into one read when a whole video is read (:meth:`YuvFrames.grouped`): the mark
stands still while the picture moves, so their mean keeps the mark and blurs the rest. ``wmark extract`` of a 5 s
720p pan marked by the default and re-encoded at CRF 28 took 11.0 s in runs of 8 against 51.0 s frame by frame,
and read all 192 codeword bits against 0.990 of them (benchmarks/results/video_read.json). The timeline then comes
in runs of 8 frames, a third of a second at 25 fps; ``--per-frame`` reads every frame alone."""
