"""Benchmarking bit accuracy against quality (``wmark bench``).

- :mod:`~wmark.bench.engine`: model x strength x attack x frame -> rows.
- :mod:`~wmark.bench.report`: frames.csv, summary.json, curves, timeline and CI thresholds.
- :mod:`~wmark.bench.peers`: invisible-watermark's methods behind the same interface.
"""
