"""Colour constants shared by the attacks and by wmark, which imports this package (never the reverse). Free of
torch, like the package's other entry points that are read without it."""

BT601_LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G and B: Y = 0.299 R + 0.587 G + 0.114 B, as JPEG and Pillow's RGB -> L use."""
