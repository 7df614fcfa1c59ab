"""The order in which a search level (:mod:`wmark.sync.search`) tries poses on an image, each with the factor its
p-value carries (:func:`wmark.watermarker.decision.factor`), and the loop that stops at the first detection.

The image as received is read first; only when it is not detected is the rest planned (by look, only when its first
look does not detect: its other looks then come after the first look at every pose, :func:`in_turn`). With reframes, for a model
with a template, the plan first looks for the template (:func:`wmark.sync.template.find`) and counts the fits it finds
(each may be read turned in place) and the placements :func:`wmark.sync.reframe.search` will score for them, known
before any decoding, so the Bonferroni bound holds; with rotations, each flip is scanned for its best angle
(:func:`wmark.sync.rotation.scan`).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable, Iterator, Sequence

import torch

from wmark.sync import dihedral, reframe, rotation, template
from wmark.sync.search import Level, Pose
from wmark.watermarker.decision import factor
from wmark.watermarker.reader import Reader
from wmark.watermarker.reports import Detection, Extraction, posed

ALIGNED = 2.0
"""How many times the identity's alignment (see :func:`poses`) a flip or quarter turn needs to be read first, before
any placement of a crop: a flipped photo then costs one decode, not the placements' search (7.6 s against 0.5 s a
read at 768x512, benchmarks/results/small_photos.json). The order changes what a search costs, never what it counts."""
READ_POSES = 1
"""With rotations, how many of the best-aligned poses a search decodes in full after its scans (besides the
identity, read first): each more costs a full decode on an unmarked image."""
Candidates = Iterable[tuple[Pose, int]]
"""(pose, the factor a read under it carries), in the order a search tries them."""


def plan(reader: Reader, x: torch.Tensor, level: Level) -> tuple[int, Iterator[Pose]]:
    """(count, poses): the poses of ``level`` to read frames ``x`` (B, 3, H, W) under after the identity
    (:func:`poses`), and how many the p-value counts: for a level with reframes and a model with a template, the
    placements found plus the rotation scan's poses; for a model without a template, the level's poses less any
    placement (as :func:`~wmark.watermarker.decision.video_factor` counts them); else ``level.hypotheses``."""
    domain, size = reader.domain, reader.model.size
    if not domain.template:  # no template, no placement to try or to count
        return replace(level, reframes=False).hypotheses, poses(reader, x, level)
    if not level.reframes:
        return level.hypotheses, poses(reader, x, level)
    frame = x.mean(0, keepdim=True)
    fits = {}
    plausible = reframe.plausible(domain, size, *frame.shape[-2:])
    if found := template.find(frame, plausible):  # the mirror's peaks are as strong: one look decides
        for name in level.transforms:
            seen = found if name == "identity" else template.find(dihedral.UNDO[name](frame), plausible)
            if seen:
                fits[name] = seen
    placements = sum(reframe.hypotheses(domain, size, *frame.shape[-2:], fit)
                     for seen in fits.values() for fit in seen)
    turns = sum(map(len, fits.values()))  # each fit may be read turned in place
    return len(level.transforms) * rotation.ANGLES + turns + placements, poses(reader, x, level, fits)


def poses(reader: Reader, x: torch.Tensor, level: Level,
          fits: dict[str, list[template.Fit]] | None = None) -> Iterator[Pose]:
    """The poses of ``level`` to read frames ``x`` (B, 3, H, W) under once the identity has failed, in order: a flip
    or quarter turn whose alignment (the coarsest band's :meth:`~wmark.domain.Domain.aligner` at no turn, a few tiles
    decoded) stands :data:`ALIGNED` times above the identity's; for each flip whose template ``fits`` holds, the best
    aligned first, the fit's angle where the fit is the picture's own grid turned in place (:func:`wmark.sync.reframe.in_place`),
    then for each fit again, each flip's first fit before any flip's second (the first fits in the order of
    :func:`wmark.sync.reframe.promise`), the placements :func:`wmark.sync.reframe.search` scores best, every fit's first
    turn of them before any fit's second (:func:`_by_turn`); then each flip or quarter turn; with
    rotations, those aligned better than the identity unturned, then each of them is scanned for its best angle by the coarsest band and only the :data:`READ_POSES`
    best-aligned are read, their angle refined on the finest band (:func:`wmark.sync.rotation.refine`). Several
    frames (a video's) are scanned as their mean."""
    domain, model = reader.domain, reader.model
    x = x.mean(0, keepdim=True)  # a video's frames carry one mark: their mean keeps it and blurs what moves
    undone = {name: dihedral.UNDO[name](x) for name in level.transforms}
    aligners = {name: domain.aligner(model, frame) for name, frame in undone.items()}
    aligned = {name: scores([0.0])[0] for name, scores in aligners.items()}
    tried = {Pose()}
    best = max(aligned, key=aligned.__getitem__)
    if best != "identity" and aligned[best] >= ALIGNED * aligned["identity"]:
        tried.add(Pose(best))
        yield Pose(best)
    fitted = sorted((fits or {}).items(), key=lambda item: -aligned[item[0]])
    for name, seen in fitted:  # one decode each, so all come before any placement is scored
        for fit in seen:
            turned = Pose(name, round(fit.degrees(), 3))
            if turned not in tried and reframe.in_place(domain, model.size, *undone[name].shape[-2:], fit):
                tried.add(turned)
                yield turned
    # Each flip's strongest fit is placed before any flip's next one: a crop of Storm.jpg at 768x512 showed a faint fit
    # of noise pairs (strength 2.05 against 8.89) that was placed before the other flip's true fit. A mirror's fits are
    # the picture's own, as strong: among first fits, the flip whose best-ranked placement scores best goes first.
    promising = ({name: reframe.promise(domain, model, undone[name], seen[0]) for name, seen in fitted}
                 if len(fitted) > 1 else {})
    ranked = sorted(((rank, name, fit) for name, seen in fitted for rank, fit in enumerate(seen)),
                    key=lambda entry: (entry[0], -promising.get(entry[1], 0.0)))
    searches = [(name, reframe.search(domain, model, undone[name], fit)) for _, name, fit in ranked]
    for name, placed in _by_turn(searches):
        yield Pose(name, round(placed.degrees(), 3), placed)
    if not level.rotations:
        yield from (Pose(name) for name in sorted(level.transforms, key=lambda name: -aligned[name])
                    if Pose(name) not in tried)
        return
    for name in sorted(level.transforms, key=lambda name: -aligned[name]):
        # A flip the coarse band prefers at no turn is read so before the scan, whose best angle for it can be a degree
        # off where no template shows (OneStandsOut.jpg at 1 MP mirrored: -1.0 degree, read as chance).
        if aligned[name] > aligned["identity"] and Pose(name) not in tried:
            tried.add(Pose(name))
            yield Pose(name)
    scanned = sorted(((*rotation.scan(aligners[name]), name) for name in level.transforms), key=lambda found: -found[1])
    for angle, _, name in scanned[:READ_POSES]:
        fine = domain.aligner(model, undone[name], finest=True)
        pose = Pose(name, rotation.refine(angle, fine))
        if pose not in tried:
            yield pose


def _by_turn(searches: list[tuple[str, Iterator[list]]]) -> Iterator[tuple[str, reframe.Reframe]]:
    """(flip, reframe) of each fit's first turn of hypotheses (:func:`wmark.sync.reframe.search`), in the fits' order,
    then of each one's second: a picture with its own lattice shows fits that are not the template's (grid-l.jpg), and
    each wrong fit's second turn would cost 5-8 s before the right fit were placed (a 90 % crop of grid-l.jpg at 2 MP,
    resized to 0.75 and saved at JPEG 75: 27.8 s read fit by fit)."""
    while searches:
        for entry in list(searches):
            turn = next(entry[1], None)
            if turn is None:
                searches.remove(entry)
            else:
                yield from ((entry[0], placed) for _, placed in turn)


def image_candidates(reader: Reader, x: torch.Tensor, level: Level) -> Iterator[tuple[Pose, int]]:
    """The identity, then (planned only if asked for) each pose of :func:`plan`, with their factors."""
    yield Pose(), factor(level, Pose())
    if level.hypotheses == 1:
        return
    count, planned = plan(reader, x, level)
    for pose in planned:
        yield pose, factor(level, pose, count)


def first_detected(candidates: Candidates, reads: Sequence[Callable[[Pose], torch.Tensor]],
                   decide: Callable[[torch.Tensor, int], Extraction | Detection],
                   by_look: bool = False) -> Extraction | Detection:
    """``decide(read(pose), factor * len(reads))`` for each candidate and each of ``reads`` (the looks of
    :meth:`~wmark.watermarker.reader.Reader.image_reads`; each look is one more test, so the factor counts them), in
    the order of :func:`in_turn`: the first report that detects, else the image as received read by the last look,
    each with the pose it was read under."""
    fallback = None
    for index, (pose, count), read in in_turn(candidates, reads, by_look):
        found = posed(decide(read(pose), count * len(reads)), pose)
        if found.detected:
            return found
        if index == 0 and read is reads[-1]:
            fallback = found
    return fallback


def in_turn(candidates: Candidates, reads: Sequence[Callable[[Pose], torch.Tensor]],
            by_look: bool) -> Iterator[tuple[int, tuple[Pose, int], Callable[[Pose], torch.Tensor]]]:
    """(candidate's index, candidate, look) in the order a search reads them: every look at a pose before the next
    pose; ``by_look`` (:meth:`~wmark.watermarker.reader.Reader.by_look`), the first look at every pose, then the next
    look at each, so a pose that needs no other look is reached after one cheap look at each pose before it (a flipped
    768x512 photo read in 0.4-0.6 s against 0.9-1.2 s). The order changes what a search costs, never what it counts."""
    if not by_look:
        for index, candidate in enumerate(candidates):
            for read in reads:
                yield index, candidate, read
        return
    seen = []
    for index, candidate in enumerate(candidates):
        seen.append(candidate)
        yield index, candidate, reads[0]
    for read in reads[1:]:
        for index, candidate in enumerate(seen):
            yield index, candidate, read
