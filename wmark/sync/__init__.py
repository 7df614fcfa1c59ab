"""Synchronisation at extraction: hypotheses about how the received image was transformed after marking,
each undone before decoding, with the p-value corrected for the number tried (the geometric-robustness issue).

- :mod:`~wmark.sync.dihedral`: flips and quarter turns, undone exactly (``--search fast``).
- :mod:`~wmark.sync.rotation`: small rotations, found by a scan of angles.
- :mod:`~wmark.sync.template`: the template's gratings (:mod:`wmark.domain.template`, embedded with the mark) found
  by their spectral peaks, which give a crop's grid.
- :mod:`~wmark.sync.reframe`: which tiles of the marked frame a crop holds, scored on the tiles' own marks.
- :mod:`~wmark.sync.search`: the search levels, which combine them, and the p-value's correction.
"""

DEFAULT_SEARCH = "sync"
"""The search level ``extract``, ``detect`` and ``scan`` use unless told otherwise: of the levels whose worst 1080p
extraction takes at most 5 decodes of invisible-watermark's dwtDctSvd, the one that reads the most geometric edits,
then the most edited photos (benchmarks/search.py; tests/test_sync.py checks this against its committed result). Kept here, free of torch, so
that the command line's help starts fast."""
