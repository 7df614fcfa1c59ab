"""Committed trained watermarking models: one folder per model with card.json and model.safetensors.

Installed as the package ``wmark.checkpoints`` so that ``wmark.load(name)`` finds them outside a checkout.
"""
