"""The jobs behind :class:`wmark.api.Watermarker`, one module each.

- :mod:`~wmark.watermarker.inputs`: tensors, PIL images, arrays and paths in and out.
- :mod:`~wmark.watermarker.embedder`: the strength policy and the marked pixels.
- :mod:`~wmark.watermarker.reader`: decoder logits of frames under a pose.
- :mod:`~wmark.watermarker.decision`: the p-value rule, the hypothesis factor and the detection decision.
- :mod:`~wmark.watermarker.search`: the poses a search level tries, in order, with their factors.
- :mod:`~wmark.watermarker.video`: marking a video file, and the one recipe that reads one.
- :mod:`~wmark.watermarker.files`: file safety, marking a file and verifying what was written.
- :mod:`~wmark.watermarker.reports`: the results, as the CLI prints them.
"""
