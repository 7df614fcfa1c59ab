"""Embedding domains: where in a full-resolution frame a model's residual goes, and how it is shaped
for the eye. See :mod:`wmark.domain.domain`."""
from wmark.domain.domain import Band, Domain

__all__ = ["Band", "Domain"]
