"""The synchronisation template (wmark.domain.template), how it is found (wmark.sync.template) and the crop search it
drives (wmark.sync.reframe)."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import wmark
from wmark.domain import Domain
from wmark.domain.grid import TileGrid
from wmark.domain.template import HARMONIC, pattern
from wmark.sync import reframe, template
from wmark.sync.search import LEVELS
from wmark.watermarker import search as search_order

HEIGHT, WIDTH, ROWS, COLS = 768, 1152, 11, 16


def _texture(seed: int) -> np.ndarray:
    """A grey picture with smooth random texture (H, W) in 8-bit levels."""
    noise = torch.randn(1, 1, HEIGHT // 8, WIDTH // 8, generator=torch.Generator().manual_seed(seed))
    smooth = torch.nn.functional.interpolate(noise, size=(HEIGHT, WIDTH), mode="bicubic", align_corners=False)
    return (128 + 30 * smooth[0, 0]).numpy()


def _picture(levels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.repeat(levels.clip(0, 255).round().astype(np.uint8)[..., None], 3, -1))


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def templated() -> Image.Image:
    return _picture(_texture(0) + 1.5 * pattern(HEIGHT, WIDTH, ROWS, COLS)[0, 0].numpy())


def _circular(a: float, b: float) -> float:
    return abs((a - b + 0.5) % 1.0 - 0.5)


def test_template_gives_the_pitch_and_offset_of_a_rescaled_crop(templated):
    left, top, scale = 173, 91, 0.8
    received = templated.crop((left, top, left + 900, top + 600)).resize((720, 480), Image.BICUBIC)
    fit = template.find(_tensor(received))[0]
    pitch_x, pitch_y = fit.pitch()
    assert pitch_x == pytest.approx(WIDTH / COLS * scale, rel=2e-3)
    assert pitch_y == pytest.approx(HEIGHT / ROWS * scale, rel=2e-3)
    assert abs(fit.degrees()) < 0.2
    # The received pixel centre (0.5, 0.5) was at left + 0.5 / scale in the frame.
    truth = ((left + 0.5 / scale) / (WIDTH / COLS), (top + 0.5 / scale) / (HEIGHT / ROWS))
    at_origin = [[offset[axis] + 0.5 * sum(fit.matrix[axis]) for axis in range(2)] for offset in fit.offsets]
    assert min(max(_circular(value, true) for value, true in zip(found, truth)) for found in at_origin) < 0.01


def test_template_gives_the_angle_of_a_turned_picture(templated):
    fit = template.find(_tensor(templated.rotate(4, resample=Image.BICUBIC)))[0]
    assert fit.degrees() == pytest.approx(4, abs=0.05)


def test_grain_in_half_the_picture_does_not_hide_a_faint_template(monkeypatch):
    """Each pixel is divided by the RMS around it before the spectrum, so the grainy half, whose noise would
    swamp the gratings' peaks, counts no more than the smooth half, where they stand clear."""
    levels = _texture(2) + 0.25 * pattern(HEIGHT, WIDTH, ROWS, COLS)[0, 0].numpy()
    levels[: HEIGHT // 2] += np.random.default_rng(0).normal(0, 40, (HEIGHT // 2, WIDTH))
    x = _tensor(_picture(levels))
    pitch = (WIDTH / COLS, HEIGHT / ROWS)
    fits = template.find(x)
    assert fits and fits[0].pitch() == pytest.approx(pitch, rel=2e-3)
    monkeypatch.setattr(template, "LOCAL_RMS", 1e6)  # the same division everywhere: the grain swamps the peaks
    assert all(fit.strength < fits[0].strength / 2 for fit in template.find(x))


def test_a_picture_without_template_has_none():
    assert template.find(_tensor(_picture(_texture(1)))) == []


def _waves(cycles_x: float, cycles_y: float, amplitude: float) -> np.ndarray:
    """A grating (H, W) of ``cycles_x`` and ``cycles_y`` cycles per tile of the test grid along x and y."""
    x = (np.arange(WIDTH) + 0.5) * COLS / WIDTH
    y = (np.arange(HEIGHT) + 0.5) * ROWS / HEIGHT
    return amplitude * np.cos(2 * np.pi * (cycles_x * x[None, :] + cycles_y * y[:, None]) + 1.0)


def test_ripples_along_one_axis_do_not_hide_the_template():
    """Water ripples put strong peaks all over one axis of the spectrum (ColdRipple.jpg's hid the row gratings of
    the first, axial template); the diagonal gratings lie away from them."""
    rng = np.random.default_rng(3)
    ripples = sum(_waves(0.0, rows, 6.0) for rows in rng.uniform(6, 20, 60))
    received = _picture(_texture(4) + ripples + 1.5 * pattern(HEIGHT, WIDTH, ROWS, COLS)[0, 0].numpy())
    fits = template.find(_tensor(received))
    assert fits and fits[0].pitch() == pytest.approx((WIDTH / COLS, HEIGHT / ROWS), rel=2e-3)


def test_a_lattice_chained_to_the_gratings_leaves_their_grid_among_the_fits():
    """A picture's own peaks 11/10 above the upper gratings on both diagonals make a stronger pair with them (as
    grid-l.jpg's lattice does): the gratings' own grid is the second fit."""
    harmonic = HARMONIC + 1
    chained = (harmonic * harmonic / HARMONIC,) * 2
    lattice = _waves(*chained, 4.0) + _waves(chained[0], -chained[1], 4.0)
    received = _picture(_texture(5) + lattice + 1.5 * pattern(HEIGHT, WIDTH, ROWS, COLS)[0, 0].numpy())
    fits = template.find(_tensor(received))
    truth = (WIDTH / COLS, HEIGHT / ROWS)
    assert fits[0].pitch() == pytest.approx(tuple(p * HARMONIC / harmonic for p in truth), rel=5e-3)
    assert any(fit.pitch() == pytest.approx(truth, rel=2e-3) for fit in fits)


@pytest.fixture(scope="module")
def marker():
    return wmark.load("mbrs-64-tiled", device="cpu")


@pytest.fixture(scope="module")
def large_marked(marker, photo) -> Image.Image:
    """The fixture photo enlarged to 1152x648 (a full 16-tile grid) and marked with "crop me"."""
    return marker.embed(Image.open(photo).convert("RGB").resize((1152, 648), Image.BICUBIC), "crop me")


def test_sync_search_reads_a_crop_and_says_where_it_lay(marker, large_marked, monkeypatch):
    left, top, width, height = 200, 70, 860, 480  # 55 % of the area
    crop = np.asarray(large_marked.crop((left, top, left + width, top + height)))
    assert not marker.extract(crop, search="off").detected
    calls, scored = [], []  # places scored, and those the search's own ranking and rescoring score
    scores, search = reframe._scores, reframe.search
    monkeypatch.setattr(reframe, "_scores", lambda logits, variants, *args: calls.extend([1] * len(variants))
                        or scores(logits, variants, *args))

    def searched(*args):
        turns = search(*args)
        while True:
            before = len(calls)
            turn = next(turns, None)
            scored.extend(calls[before:])
            if turn is None:
                return
            yield turn
    monkeypatch.setattr(reframe, "search", searched)
    found = marker.extract(crop, search="sync")
    assert found.detected and found.message == "crop me" and found.transform == "identity"
    box = [left / 1152, top / 648, (left + width) / 1152, (top + height) / 648]
    assert found.reframe["box"] == pytest.approx(box, abs=0.01)
    assert 0 < len(scored) <= reframe.hypotheses_bound() // 2  # one orientation of the frame fits this picture
    # the p-value counts the rotation scan's poses and every placement of the picture and of its mirror image,
    # each read in two looks (the coarser bands, then all)
    assert 4 * (2 * 175 + len(scored)) <= found.hypotheses <= 4 * LEVELS["sync"].hypotheses


def test_the_decoder_scores_the_best_ranked_places_of_the_best_ranked_offsets_first(marker, large_marked, monkeypatch):
    crop = _tensor(large_marked.crop((200, 70, 1060, 550)))
    fit = template.find(crop, reframe.plausible(marker.domain, marker.model.size, *crop.shape[-2:]))[0]
    ranked, decoded = [], []
    rank, decode = reframe._rank, reframe._decoded
    monkeypatch.setattr(reframe, "_rank", lambda *args: ranked.append(1) or rank(*args))
    monkeypatch.setattr(reframe, "_decoded", lambda model, images, needed: decoded.append(int(needed.sum())) or decode(
        model, images, needed))
    turns = reframe.search(marker.domain, marker.model, crop, fit)
    first = next(turns)
    assert 0 < len(first) == len(decoded) <= reframe.RESCORED * len(reframe._searched(marker.domain)) < len(ranked)
    # each place fixes one rotation a cell, so the decoder reads at most one a place, not all 8 of the square
    assert all(0 < count <= min(8, reframe.RESCORED_PLACES) * reframe.RESCORE_CELLS for count in decoded)
    assert sum(decoded) < 8 * reframe.RESCORE_CELLS * len(first)
    assert [score for score, _ in first] == sorted((score for score, _ in first), reverse=True)
    second, *more = list(turns)  # asked for more, it scores every other offset and keeps the best of them
    assert len(decoded) == len(ranked) and 0 < len(second) <= reframe.RESCORED and not more
    assert [score for score, _ in second] == sorted((score for score, _ in second), reverse=True)
    assert not {placed for _, placed in first} & {placed for _, placed in second}


def test_rescoring_a_place_reads_as_decoding_every_rotation_would(marker, large_marked, monkeypatch):
    crop = _tensor(large_marked.crop((200, 70, 1060, 550)))
    fit = template.find(crop, reframe.plausible(marker.domain, marker.model.size, *crop.shape[-2:]))[0]
    salt, zoom, offsets = next(band for band in reframe._ranked(marker.domain, marker.model, crop, fit) if band[2])
    chosen = reframe._rescored(marker.domain, marker.model, crop, offsets[0], salt, zoom)
    decode = reframe._decoded
    monkeypatch.setattr(reframe, "_decoded", lambda model, images, needed: decode(model, images, torch.ones_like(needed)))
    assert reframe._rescored(marker.domain, marker.model, crop, offsets[0], salt, zoom) == chosen


def test_places_are_scored_by_how_their_parts_cells_agree():
    """Two parts: under place 0 the cells of each part agree (score 2 cells x 1 squared), under place 1 they cancel."""
    logits = torch.zeros(8, 4, 2)
    logits[0] = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    logits[1] = -logits[0]
    variants = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1]])  # place 1 reads cells 1 and 3 under the other rotation
    parts = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    assert reframe._scores(logits, variants, parts, 2).tolist() == [2.0, 0.0]
    assert reframe._scores(logits, variants + 8, parts, 2).tolist() == [2.0, 0.0]  # a sign flips both alike


def test_sync_search_reads_a_mirrored_and_turned_mark(marker, large_marked):
    edited = np.asarray(large_marked.transpose(Image.FLIP_LEFT_RIGHT).rotate(3, resample=Image.BICUBIC))
    found = marker.extract(edited, search="sync")
    assert found.detected and found.message == "crop me" and found.transform == "flip-h"
    assert found.rotation == pytest.approx(-3, abs=0.1)  # turned after the flip, so undone before it


def test_sync_level_counts_every_hypothesis_it_can_score():
    level = LEVELS["sync"]
    assert level.hypotheses == 2 * 175 + 2 * (template.FITS + reframe.hypotheses_bound())
    assert reframe.hypotheses_bound() == reframe.SYNC_BANDS * template.FITS * template.CANDIDATES * 2 * sum(
        16 * short for short in range(1, 17))


def test_canvas_puts_the_picture_back_in_place():
    x = torch.rand(1, 3, 64, 96)
    unit = 1 / 32  # 32 received pixels a tile, the picture 1 tile right and 2 down in a 4 x 5 frame
    placed = reframe.Reframe(((unit, 0.0), (0.0, unit)), (1.0, 2.0), 4, 5, 64, 96)
    frames, coverage = reframe.canvas(x, placed, 32)
    assert frames.shape == (1, 3, 128, 160) and coverage.shape == (1, 1, 128, 160)
    assert torch.allclose(frames[..., 64:128, 32:128], x, atol=1e-5)
    assert coverage[..., 64:128, 32:128].min() > 0.99 and coverage[..., :60, :].max() < 0.01


def test_a_canvas_has_the_marked_frames_aspect_so_every_band_keeps_its_grid():
    """768x512 has 16 x 11 tiles of 48 x 46.5 px: square tiles (1024x704) would give the 8-tile band 6 rows, not 5."""
    placed = reframe.Reframe(((1 / 48, 0.0), (0.0, 11 / 512)), (0.0, 0.0), 11, 16, 512, 768)
    assert placed.frame_shape(64) == (683, 1024)
    for tiles in (16, 8, 3):
        on_canvas, marked = (TileGrid.over(*shape, tiles, 64, 1) for shape in ((683, 1024), (512, 768)))
        assert (on_canvas.rows, on_canvas.cols) == (marked.rows, marked.cols)
    squeezed = reframe.Reframe(((1 / 48, 0.0), (0.0, 1 / 70)), (0.0, 0.0), 11, 16, 512, 768)
    assert squeezed.frame_shape(64) == (704, 1024)  # that aspect would give the grid 16 rows: square tiles


def test_every_band_of_a_small_photo_reads_after_a_crop(marker, photo):
    """A 3:2 photo of 768x512 carries the 8-tile middle band; after an 80 % crop each band reads on the canvas."""
    small = marker.embed(Image.open(photo).convert("RGB").resize((768, 512), Image.BICUBIC), "crop me")
    x = _tensor(small.crop((40, 5, 40 + 687, 5 + 458)))
    fit = template.find(x, reframe.plausible(marker.domain, marker.model.size, *x.shape[-2:]))[0]
    _, placed = next(reframe.search(marker.domain, marker.model, x, fit))[0]
    frames, coverage = reframe.canvas(x, placed, marker.model.size)
    truth = torch.tensor([int(bit) for bit in marker.extract(small).codeword]).view(marker.domain.classes, -1)
    with torch.no_grad():
        bands = marker.domain.band_means(marker.model, frames, coverage=coverage)
    accuracies = [float(((means[0] > 0).long() == truth).float().mean()) for means, _ in bands]
    assert min(accuracies) >= 0.95, accuracies  # on square tiles the middle band read about half its bits


def test_a_small_photo_turned_in_place_is_read_at_the_templates_angle_before_any_placement(marker, photo,
                                                                                          monkeypatch):
    """Turned 5 degrees where it lies (size kept, black corners): the template's grid is the frame's own, turned, so
    the frame is read turned back by the fit's angle, and no placement is scored."""
    small = marker.embed(Image.open(photo).convert("RGB").resize((768, 512), Image.BICUBIC), "crop me")
    turned = small.rotate(5, resample=Image.BICUBIC)
    x = _tensor(turned)
    fits = template.find(x, reframe.plausible(marker.domain, marker.model.size, *x.shape[-2:]))
    assert any(reframe.in_place(marker.domain, marker.model.size, 512, 768, fit) for fit in fits)
    assert not any(reframe.in_place(marker.domain, marker.model.size, 458, 687, fit)
                   for fit in template.find(_tensor(turned.crop((40, 5, 727, 463)))))  # a crop is placed, not turned
    monkeypatch.setattr(reframe, "search", lambda *args: pytest.fail("a placement was scored"))
    found = marker.extract(np.asarray(turned), search="sync")
    assert found.detected and found.message == "crop me" and found.reframe is None
    assert found.rotation == pytest.approx(5, abs=0.1)


def test_every_turned_read_comes_before_any_placement(marker, photo, monkeypatch):
    """A mirrored small photo turned where it lies: the mirror's fit is read turned back before any placement of
    the unmirrored picture's fits is scored, even where the flip is not read first (grid-l.jpg at 1 MP mirrored:
    0.8 s against 8.3 s when the identity's placements came first)."""
    small = marker.embed(Image.open(photo).convert("RGB").resize((768, 512), Image.BICUBIC), "crop me")
    mirrored = small.transpose(Image.FLIP_LEFT_RIGHT).rotate(5, resample=Image.BICUBIC)
    # every pose aligns alike: no flip is read before the template's poses, and the identity's fits come first
    monkeypatch.setattr(Domain, "aligner", lambda *args, **kwargs: lambda angles: [1.0] * len(angles))
    monkeypatch.setattr(reframe, "search", lambda *args: pytest.fail("a placement was scored"))
    found = marker.extract(np.asarray(mirrored), search="sync")
    assert found.detected and found.message == "crop me" and found.transform == "flip-h" and found.reframe is None


def test_each_flips_first_fit_is_placed_before_any_flips_second_the_most_promising_first(marker, monkeypatch):
    """A faint second fit of a flip (noise pairs) waits for every flip's first fit, and among first fits the flip whose
    likeliest placement scores best goes first; every fit's first turn of placements comes before any fit's second."""
    faint, strong, mirrored = (template.Fit(((0.05, 0.0), (0.0, 0.05)), ((0.0, 0.0),), strength)
                               for strength in (2.0, 9.0, 8.0))
    monkeypatch.setattr(Domain, "aligner", lambda self, model, frame, finest=False: lambda angles: [1.0] * len(angles))
    placed = []

    def search(domain, model, x, fit):
        for turn in (1, 2):
            placed.append((turn, fit.strength))
            yield []
    monkeypatch.setattr(reframe, "search", search)
    fits = {"flip-h": [mirrored, faint], "identity": [strong]}
    for promise, order in ((lambda fit: fit.strength, [9.0, 8.0, 2.0]), (lambda fit: -fit.strength, [8.0, 9.0, 2.0])):
        monkeypatch.setattr(reframe, "promise", lambda domain, model, x, fit, score=promise: score(fit))
        placed.clear()
        list(search_order.poses(marker.reader, torch.rand(1, 3, 64, 96), LEVELS["sync"], fits))
        assert placed == [(1, strength) for strength in order] + [(2, strength) for strength in order]  # by turn


def test_the_right_flip_of_a_crop_is_the_more_promising(marker, photo):
    small = marker.embed(Image.open(photo).convert("RGB").resize((768, 432), Image.BICUBIC), "crop me")
    crop = _tensor(small.crop((150, 60, 700, 400)))
    plausible = reframe.plausible(marker.domain, marker.model.size, *crop.shape[-2:])
    mirror = crop.flip(-1)
    scores = [reframe.promise(marker.domain, marker.model, x, template.find(x, plausible)[0]) for x in (crop, mirror)]
    assert scores[0] > 2 * scores[1]  # 5.20 against 1.46


def test_sync_search_scans_for_a_turn_where_no_template_shows(marker, large_marked, monkeypatch):
    monkeypatch.setattr(template, "find", lambda *args: [])  # as on a flat photo, whose template rounding erased
    found = marker.extract(np.asarray(large_marked.rotate(3, resample=Image.BICUBIC)), search="sync")
    assert found.detected and found.message == "crop me" and found.reframe is None
    assert found.rotation == pytest.approx(3, abs=0.25)


def test_an_unedited_mark_is_read_before_any_search(marker, large_marked, monkeypatch):
    """The image as received is tested at fpr / 2 first, and its first look reads the mark, so the search's
    template and pose scans never run."""
    monkeypatch.setattr(template, "find", lambda *args: pytest.fail("the template was looked for"))
    found = marker.extract(large_marked, search="sync")
    assert found.detected and found.message == "crop me" and found.hypotheses == 4 and found.reframe is None


def test_a_band_read_one_tile_a_part_on_a_canvas_is_left_out(marker, large_marked):
    """The coarse band's lower row is 30 % covered, so each part of it is read from one tile, whose spread is
    unmeasured: the finest band alone decides (a 70 % crop of Aqua.jpg misread 6 % of its bits otherwise)."""
    x = _tensor(large_marked.crop((0, 0, 1152, 420)))
    placed = reframe.Reframe(((1 / 72, 0.0), (0.0, 1 / 72)), (0.0, 0.0), 9, 16, 420, 1152)
    frames, coverage = reframe.canvas(x, placed, marker.model.size)
    both = marker.domain.decode(marker.model, frames, coverage=coverage)
    finest = replace(marker.domain, bands=(max(marker.domain.bands, key=lambda band: band.tiles),))
    assert torch.equal(both > 0, finest.decode(marker.model, frames, coverage=coverage) > 0)
    assert marker.extract_logits(both[0]).message == "crop me"


def test_only_grids_a_search_could_place_are_plausible(marker):
    plausible = reframe.plausible(marker.domain, marker.model.size, 648, 1152)
    square = lambda pitch: ((1 / pitch, 0.0), (0.0, 1 / pitch))  # noqa: E731
    assert plausible(square(72)) and plausible(square(110))  # the whole frame; a crop keeping 65 % of each side
    assert plausible(square(200))  # 5.8 tiles across: a crop of a frame whose template is on its 8-tile band
    assert not plausible(square(30))  # 38 tiles across: more than the frame has
    assert not plausible(square(300))  # under 4 tiles across: less than half of either band's frame
    assert not plausible(((1 / 72, 0.0), (0.0, 1 / 200)))  # tiles squeezed to a third


def test_a_canvas_read_decodes_only_the_tiles_the_picture_covers(marker, monkeypatch):
    x, coverage = torch.rand(1, 3, 512, 768), torch.zeros(1, 1, 512, 768)
    coverage[..., :, :384] = 1  # the left half
    decoded, decode = [], marker.model.decode
    monkeypatch.setattr(marker.model, "decode", lambda tiles: decoded.append(len(tiles)) or decode(tiles))
    with torch.no_grad():
        marker.domain.decode(marker.model, x, coverage=coverage)
        whole = sum(decoded)
        decoded.clear()
        assert not marker.domain.decode(marker.model, x, coverage=torch.zeros_like(coverage)).any() and not decoded
        marker.domain.decode(marker.model, x)
    assert 0 < whole <= sum(decoded) * 0.6  # about half the tiles of each band
