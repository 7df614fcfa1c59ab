"""Synchronisation at extraction: hypotheses about how the received image was transformed after marking,
each undone before decoding, with the p-value corrected for the number tried (the geometric-robustness issue).

- :mod:`~wmark.sync.dihedral`: flips and quarter turns, undone exactly (``--search fast``).
"""
