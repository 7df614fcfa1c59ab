"""Embedding domains: tile grids, codeword classes, luma and JND shaping (wmark.domain)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import wmark
from wmark import pipeline, zoo
from wmark.domain import Band, Domain
from wmark.domain.grid import TileGrid, transform
from wmark.domain.rotation import undo
from wmark.io.image import read_image
from wmark.perception.jnd import luma
from wmark.stats import psnr
from wmark.watermarker.embedder import message

TILED = {"bands": [{"tiles": 8}, {"tiles": 2, "weight": 0.5}], "classes": 2, "luma": True, "jnd": True}
PATTERNS = {**TILED, "patterns": True}


@pytest.fixture(scope="module")
def model():
    return zoo.build("hidden", message_bits=16, size=64, channels=8, encoder_blocks=2, decoder_blocks=3).eval()


def tiled_marker(name: str, domain: dict) -> wmark.Watermarker:
    card = zoo.find_card(name)
    return wmark.Watermarker(card.with_domain(domain), device="cpu")


@pytest.mark.parametrize("height,width,tiles,expected", [
    (1080, 1920, 16, (9, 16)), (1920, 1080, 16, (16, 9)), (500, 500, 4, (4, 4)), (96, 160, 3, (2, 3)),
    (64, 900, 4, (1, 4)), (300, 400, 1, (1, 1)),
    (107, 160, 16, (2, 3)), (683, 1024, 16, (11, 16)), (213, 320, 16, (5, 7))])  # small frames: fewer tiles
def test_grid_follows_the_aspect_ratio(height, width, tiles, expected):
    grid = TileGrid.over(height, width, tiles, 64, 1)
    assert (grid.rows, grid.cols) == expected


def test_split_and_join_are_inverse_on_the_grid():
    grid = TileGrid(rows=2, cols=3, size=8, classes=1)
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    tiles = grid.split(x)
    assert tiles.shape == (12, 3, 8, 8)
    assert torch.equal(tiles[1], x[0, :, 0:8, 8:16]) and torch.equal(tiles[6 + 5], x[1, :, 8:16, 16:24])
    assert torch.equal(grid.join(tiles, 16, 24), x)


def test_classes_are_spread_and_signs_are_fixed_per_grid():
    grid = TileGrid(rows=4, cols=4, size=64, classes=4)
    counts = torch.bincount(grid.tile_classes(), minlength=4)
    assert counts.tolist() == [4, 4, 4, 4]
    assert torch.equal(grid.signs(16, 0), grid.signs(16, 0))
    assert not torch.equal(grid.signs(16, 0), grid.signs(16, 1))
    signs = grid.signs(16, 0)
    assert set(signs.unique().tolist()) == {-1.0, 1.0} and not torch.equal(signs[0], signs[1])


def test_the_default_domain_is_the_whole_frame_pipeline(model):
    x = torch.rand(1, 3, 200, 300, generator=torch.Generator().manual_seed(3))
    message = torch.ones(1, 16)
    native = model.residual(pipeline.to_native(x, 64), message)
    assert torch.allclose(pipeline.residual(model, x, message), pipeline.from_native(native, 200, 300), atol=1e-6)
    assert Domain().is_whole_frame and Domain.from_dict(None) == Domain()


def test_card_round_trip_and_codeword_length():
    domain = Domain.from_dict(TILED)
    assert domain.bands == (Band(8), Band(2, 0.5)) and domain.classes == 2
    assert Domain.from_dict(domain.to_dict()) == domain
    assert domain.codeword_bits(64) == 128
    with pytest.raises(wmark.WmarkError):
        Domain(bands=(Band(0),))


@pytest.mark.parametrize("bands", [(Band(8, 0.0),), (Band(8, 1.0, up_to=500),), (Band(8, -1.0), Band(2)),
                                   (Band(8), Band(4, up_to=0))])
def test_a_domain_needs_a_band_embedded_at_every_size(bands):
    with pytest.raises(wmark.WmarkError, match="at least one band"):
        Domain(bands=bands)


def test_a_size_aware_band_is_embedded_and_read_only_up_to_its_size(model):
    sized = Domain.from_dict({**PATTERNS, "bands": [*PATTERNS["bands"], {"tiles": 4, "weight": 1.0, "up_to": 160}]})
    plain = Domain.from_dict(PATTERNS)
    assert Domain.from_dict(sized.to_dict()) == sized and "up_to" not in plain.to_dict()["bands"][0]
    message = torch.ones(1, sized.codeword_bits(model.message_bits))
    small, large = (torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(6))
                    for h, w in ((96, 160), (120, 200)))
    assert not torch.allclose(sized.planes(model, small, message), plain.planes(model, small, message))
    assert torch.equal(sized.planes(model, large, message), plain.planes(model, large, message))
    assert len(sized.tiles(small, model.size, model.message_bits)) == 3
    assert torch.equal(sized.decode(model, large), plain.decode(model, large))  # a large frame never carried it
    unembedded = sized.reweighted([1.0, 0.5, 0.0])  # a card's video domain leaves the band out of video frames
    assert unembedded.bands[2] == Band(4, 0.0, up_to=160)
    assert torch.equal(unembedded.decode(model, small), plain.decode(model, small))


def test_a_small_frame_locks_its_template_to_the_size_aware_band():
    domain = Domain(bands=(Band(16, 0.6), Band(3), Band(8, 0.6, up_to=1400)), template=0.35)
    assert [salt for salt, _ in domain.sync_bands()] == [0, 2]
    assert domain.sync(512, 768, 64)[0].tiles == 8 and domain.sync(1080, 1920, 64)[0].tiles == 16
    assert domain.reweighted([0.6, 2.0, 0.0]).sync(512, 768, 64)[0].tiles == 16  # video frames never carry it
    assert [salt for salt, _ in Domain(bands=(Band(16), Band(3))).sync_bands()] == [0]


def test_a_small_frame_carries_a_stronger_template_and_a_720p_or_larger_one_the_cards(model):
    domain = Domain(bands=(Band(16, 0.6), Band(3), Band(8, 0.6, up_to=1400)), luma=True, patterns=True, template=0.35)
    assert domain.template_amplitude(720, 1280) == domain.template_amplitude(1080, 1920) == 0.35
    assert domain.template_amplitude(512, 768) == domain.template_amplitude(64, 64) == pytest.approx(0.525)
    assert domain.template_amplitude(600, 1000) == pytest.approx(0.35 * 1.5 ** 0.5)
    message = torch.ones(1, domain.codeword_bits(model.message_bits))
    grey = torch.full((1, 3, 256, 384), 0.5)
    untemplated = Domain(domain.bands, luma=True, patterns=True)
    gratings = domain.planes(model, grey, message) - untemplated.planes(model, grey, message)
    expected = 0.525 * float(domain._template(256, 384, model.size).abs().max())
    assert float(gratings.abs().max()) * 255 == pytest.approx(expected, rel=1e-4)


def test_luma_projection_changes_r_g_b_alike(model):
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    r = pipeline.residual(model, x, torch.ones(1, 32), Domain.from_dict({**TILED, "jnd": False}))
    assert torch.allclose(r[:, 0], r[:, 1]) and torch.allclose(r[:, 1], r[:, 2])


def test_jnd_puts_less_in_flat_areas_than_in_texture(model):
    generator = torch.Generator().manual_seed(5)
    flat = torch.full((1, 3, 128, 128), 0.5)
    textured = (0.5 + 0.3 * (torch.rand(1, 1, 128, 128, generator=generator) - 0.5)).expand(1, 3, -1, -1)
    domain = Domain.from_dict({"bands": [{"tiles": 2}], "luma": True, "jnd": True})
    message = torch.ones(1, 16)
    flat_energy = pipeline.residual(model, flat, message, domain).abs().mean()
    textured_energy = pipeline.residual(model, textured, message, domain).abs().mean()
    assert textured_energy > 2 * flat_energy


def test_a_tiled_default_checkpoint_reads_its_long_codeword_through_jpeg(photo, tmp_path):
    marker = tiled_marker("mbrs-64", TILED)
    assert marker.bits == 128 and marker.code().capacity_bytes == 7
    marked = marker.embed(Image.open(photo).convert("RGB"), message="tiles!")
    marked.save(tmp_path / "marked.jpg", quality=75)
    found = marker.extract(tmp_path / "marked.jpg")
    assert found.detected and found.message == "tiles!"
    assert not marker.extract(photo).detected


def test_psnr_target_sets_the_strength_per_image(photo, tmp_path):
    marker = wmark.load("mbrs-64", device="cpu")
    report = marker.embed_file(photo, tmp_path / "out.png", message="hi", psnr_target=45.0)
    assert report.psnr == pytest.approx(45.0, abs=0.15)
    assert report.strength != marker.card.strength
    with pytest.raises(wmark.WmarkError, match="not both"):
        marker.embed_file(photo, tmp_path / "out2.png", message="hi", psnr_target=45.0, strength=1.0)


def test_a_card_psnr_floor_lowers_the_default_strength_only_where_an_image_would_go_under_it(photo):
    card = zoo.find_card("mbrs-64")
    x = read_image(photo).rgb
    photos = torch.cat([x, x.flip(-1).mean(1, keepdim=True).expand_as(x)])  # two residuals of different sizes
    codeword = torch.zeros(card.data["bits"], dtype=torch.long)
    at_card = wmark.Watermarker(card, device="cpu").embed_tensor(photos, codeword)
    psnrs = [float(psnr(at_card[i:i + 1], photos[i:i + 1])) for i in range(2)]
    for floor in (min(psnrs) - 1, max(psnrs) + 1):
        floored = wmark.Watermarker(zoo.Card(card.name, card.path, {**card.data, "psnr_floor": floor}), device="cpu")
        marked = floored.embed_tensor(photos, codeword)
        for i, before in enumerate(psnrs):
            after = float(psnr(marked[i:i + 1], photos[i:i + 1]))
            assert after == (pytest.approx(before) if before >= floor else pytest.approx(floor, abs=0.05))
        assert torch.equal(floored.embed_tensor(photos, codeword, strength=card.strength), at_card)


def test_video_frames_use_the_domain(clip, tmp_path):
    marker = tiled_marker("mbrs-64", {"bands": [{"tiles": 2}], "luma": True})
    report = marker.embed_file(clip, tmp_path / "marked.mp4", message="ab")
    assert report.frames == 20
    found = marker.extract(tmp_path / "marked.mp4")
    assert found.detected and found.message == "ab"


def test_a_card_video_domain_reweights_the_bands_for_video_frames_only(clip, tmp_path):
    card = zoo.find_card("mbrs-64")
    tested = card.with_domain(PATTERNS, video_domain={"band_weights": [1.0, 3.0], "rule": "a test"})
    marker = wmark.Watermarker(tested, device="cpu")
    assert [b.weight for b in marker.video_domain.bands] == [1.0, 3.0]
    assert [b.tiles for b in marker.video_domain.bands] == [b.tiles for b in marker.domain.bands]
    x = pipeline.quantize(torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(1)))
    codeword = marker.codeword("v")
    image, frame = marker.embed_tensor(x, codeword), marker.embed_tensor(x, codeword, video=True)
    assert (frame - x).abs().sum() > 1.5 * (image - x).abs().sum()  # the coarse band's weight went from 0.5 to 3
    marker.embed_file(clip, tmp_path / "marked.mp4", message="ab")  # verified on read-back, else NotVerified
    assert marker.extract(tmp_path / "marked.mp4").message == "ab"


def test_reweighted_domain_keeps_its_grids_and_decodes_alike(model):
    domain = Domain.from_dict(PATTERNS)
    heavier = domain.reweighted([1.0, 2.0])
    assert heavier.bands == (Band(8, 1.0), Band(2, 2.0)) and heavier.classes == domain.classes
    x = torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(2))
    assert torch.equal(heavier.decode(model, x), domain.decode(model, x))
    with pytest.raises(wmark.WmarkError, match="2 bands takes 2 weights"):
        domain.reweighted([1.0])


def test_a_domain_of_patterns_marks_from_luma_alone_and_one_without_refuses_it(model):
    domain, content_aware = Domain.from_dict(PATTERNS), Domain.from_dict(TILED)
    x = torch.rand(2, 3, 96, 160, generator=torch.Generator().manual_seed(4))
    message = torch.ones(2, domain.codeword_bits(model.message_bits))
    assert torch.allclose(domain.planes(model, luma(x), message), domain.planes(model, x, message), atol=1e-5)
    assert domain.planes(model, x, message).shape == (2, 1, 96, 160)
    with pytest.raises(wmark.WmarkError, match="without patterns marks RGB"):
        content_aware.planes(model, luma(x), message)


def test_luma_of_grey_is_grey():
    assert torch.allclose(luma(torch.full((1, 3, 4, 4), 0.25)), torch.full((1, 1, 4, 4), 0.25))


def test_tile_transforms_are_the_eight_symmetries_of_the_square_and_invert():
    tiles = torch.arange(16.0).view(1, 1, 4, 4).expand(8, 2, 4, 4).contiguous()
    variants = torch.arange(8)
    moved = transform(tiles, variants)
    assert len({tuple(t.flatten().tolist()) for t in moved}) == 8
    assert torch.equal(transform(moved, variants, inverse=True), tiles)


def test_undoing_a_rotation_restores_the_frame():
    x = torch.rand(1, 1, 60, 90)
    x = torch.nn.functional.interpolate(x, size=(120, 180), mode="bilinear")  # smooth, so resampling is near exact
    turned = torch.from_numpy(np.array(Image.fromarray((x[0, 0].numpy() * 255).astype(np.uint8)).rotate(
        3, resample=Image.BICUBIC))).float()[None, None] / 255
    back = undo(turned, 3.0, 120, 180)
    inner = (slice(None), slice(None), slice(30, 90), slice(40, 140))
    assert (back - x)[inner].abs().mean() < 0.02 < (turned - x)[inner].abs().mean()


def test_patterns_need_one_model_call_per_part_and_sign(photo):
    marker = tiled_marker("mbrs-64", PATTERNS)
    calls = []
    original = marker.model.residuals_on
    marker.model.residuals_on = lambda x, m: calls.append(len(m)) or original(x, m)
    marker.embed(Image.open(photo).convert("RGB"), message="p")
    assert calls == [2 * 2]  # two parts, each with its negation, for every band and tile


def test_a_batch_makes_patterns_once_per_distinct_message_and_each_frame_gets_its_own(photo):
    marker = tiled_marker("mbrs-64", PATTERNS)
    x = pipeline.quantize(torch.rand(4, 3, 96, 160, generator=torch.Generator().manual_seed(0)))
    one, other = message(marker.codeword("a"), 1, marker.device), message(marker.codeword("b"), 1, marker.device)
    calls = []
    original = marker.model.residuals_on
    marker.model.residuals_on = lambda grey, m: calls.append(len(m)) or original(grey, m)
    batch = marker.domain.residual(marker.model, x, torch.cat([one, other, one, one]))
    assert calls == [2 * 2 * 2]  # two distinct messages, two parts each, each with its negation
    alone = marker.domain.residual(marker.model, x[1:2], other)
    assert torch.allclose(batch[1:2], alone, atol=1e-6)


@pytest.mark.parametrize("domain", [TILED, PATTERNS], ids=["content-aware", "patterns"])
def test_both_tilings_read_back_after_jpeg(domain, photo, tmp_path):
    marker = tiled_marker("mbrs-64", domain)
    marker.embed(Image.open(photo).convert("RGB"), message="tiles!").save(tmp_path / "m.jpg", quality=75)
    assert marker.extract(tmp_path / "m.jpg").message == "tiles!"


def test_tiles_are_decoded_in_chunks_on_a_cpu_with_the_same_logits(model):
    from wmark.domain.domain import CPU_CHUNK, decode_tiles

    tiles = torch.rand(3 * CPU_CHUNK + 5, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(decode_tiles(model, tiles), model.decode(tiles), atol=1e-5)

