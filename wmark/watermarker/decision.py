"""The detection rule, in one place: a p-value, multiplied by the hypotheses a search could end on, against ``fpr``.

A decoded codeword's p-value (:meth:`wmark.payload.PayloadCode.decode`, the Reed-Solomon bound) or an expected
message's (:func:`wmark.stats.match_p_value`, a binomial test) is multiplied by :func:`factor`, the Bonferroni
count of the search that found the pose it was read under (:mod:`wmark.sync.search`), capped at 1
(:func:`corrected`); the mark is detected when the result is at most ``fpr``.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from wmark.errors import WmarkError
from wmark.interface.defaults import DEFAULT_FPR
from wmark.payload import PayloadCode, parse_bits
from wmark.stats import bit_confidence, check_fpr, logit_magnitude, match_p_value
from wmark.sync.search import Level, Pose
from wmark.watermarker.reports import Detection, Extraction


def factor(level: Level, pose: Pose, count: int | None = None) -> int:
    """What the p-value of a read under ``pose`` is multiplied by. A level that searches tests the image as received
    at ``fpr / 2`` and each of the ``count`` poses it could end on otherwise (default :attr:`Level.hypotheses`; an
    image's search counts its plan, :func:`wmark.watermarker.search.plan`) at ``fpr / (2 count)``: their union stays
    within ``fpr``."""
    if level.hypotheses == 1:
        return 1
    return 2 if pose == Pose() else 2 * (count or level.hypotheses)


def video_factor(level: Level, pose: Pose, template: bool) -> int:
    """:func:`factor` for a video read under ``pose`` found by ``level``: every pose the level could end on, its
    bound (a video's pose is found on a few frames, not planned on the one read); a model without a ``template``
    never places a crop, so its count leaves the placements out."""
    return factor(level, pose, (level if template else replace(level, reframes=False)).hypotheses)


def corrected(p_value: float, hypotheses: int) -> float:
    """A p-value carried over ``hypotheses`` tests (Bonferroni), at most 1."""
    return min(1.0, float(p_value) * hypotheses)


class Decision:
    """A model's payload code and presence threshold: codewords in, decisions out."""

    def __init__(self, code: PayloadCode, presence: float | None = None) -> None:
        self.layout, self.presence = code, presence

    @property
    def bits(self) -> int:
        return self.layout.n_bits

    def code(self, key: str | None = None) -> PayloadCode:
        """The payload code under ``key``."""
        return self.layout.keyed(key)

    def codeword(self, message: str | None = None, *, codeword: str | None = None, hex: str | None = None,
                 key: str | None = None) -> torch.Tensor:
        """The (L,) 0/1 codeword: a raw ``codeword`` string as given, or ``message``/``hex`` coded with ECC and
        key."""
        given = [v for v in (message, codeword, hex) if v is not None]
        if len(given) != 1:
            raise WmarkError("give exactly one of a message, a raw codeword or hex")
        if codeword is not None:
            return parse_bits(codeword, self.bits)
        code = self.code(key)
        return code.encode_text(message) if message is not None else code.encode_hex(hex)

    def mark_present(self, logits: torch.Tensor) -> bool | None:
        """Whether the decoder commits as strongly as it does on marked images, whatever the message or key:
        :func:`~wmark.stats.logit_magnitude` at or above the card's calibrated ``presence`` threshold
        (``benchmarks/presence.py``). None without a calibration."""
        return None if self.presence is None else logit_magnitude(logits) >= self.presence

    def extract(self, logits: torch.Tensor, key: str | None = None, fpr: float = DEFAULT_FPR,
                hypotheses: int = 1) -> Extraction:
        """Decode logits: detected when the ECC decodes and the corrected p-value is at most ``fpr``."""
        check_fpr(fpr)
        result = self.code(key).decode(logits)
        p_value = corrected(result.p_value, hypotheses)
        detected = bool(result.valid and p_value <= fpr)
        return Extraction(
            detected=detected,
            message=result.text if detected else None,
            hex=result.hex if detected else None,
            codeword=result.bits,
            p_value=p_value,
            bit_confidence=round(float(bit_confidence(logits.detach())), 4),
            corrected_symbols=result.corrected_symbols,
            mark_present=True if detected else self.mark_present(logits),
            hypotheses=hypotheses,
        )

    def detect(self, logits: torch.Tensor, key: str | None = None, expect: str | None = None,
               fpr: float = DEFAULT_FPR, hypotheses: int = 1) -> Detection:
        """Against an ``expect``-ed message (a binomial test on all bits, overruled when the ECC decodes another
        message) or blind (:meth:`extract`)."""
        check_fpr(fpr)
        if expect is None:
            found = self.extract(logits, key=key, fpr=fpr, hypotheses=hypotheses)
            return Detection(found.detected, found.p_value, fpr, "blind", bit_confidence=found.bit_confidence,
                             mark_present=found.mark_present, hypotheses=hypotheses)
        expected = self.codeword(expect, key=key)
        decoded = (logits > 0).to(torch.uint8)
        p_value = corrected(match_p_value(decoded, expected), hypotheses)
        found = self.code(key).decode(logits)
        if found.valid and found.data != expect.encode("utf-8").rstrip(b"\0"):
            # The codes of two messages share every symbol where their zero padding agrees, so the binomial
            # test alone would accept a short message in an image marked with another one; the ECC says which.
            p_value = 1.0
        present = True if p_value <= fpr else self.mark_present(logits)
        return Detection(p_value <= fpr, p_value, fpr, "expect", int((decoded == expected).sum()),
                         round(float(bit_confidence(logits)), 4), present, hypotheses=hypotheses)

    def verified(self, logits: torch.Tensor, codeword: torch.Tensor, key: str | None, raw: bool) -> bool:
        """Whether ``logits`` read back ``codeword``: raw bits by a binomial match at the default rate, coded
        payloads by decoding exactly."""
        if raw:
            return bool(match_p_value(logits > 0, codeword) <= DEFAULT_FPR)
        found = self.extract(logits, key=key)
        return bool(found.detected and self.codeword(hex=found.hex, key=key).equal(codeword))
