"""Contract tests over every registered family and every committed checkpoint (timm's test_models style)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import wmark
from wmark import pipeline, zoo
from wmark.domain import Domain
from wmark.models.inference import for_inference
from wmark.stats import psnr

EXPECTED = Path(__file__).parent / "expected"
SMALL = {
    "hidden": {"message_bits": 16, "size": 64, "channels": 8, "encoder_blocks": 2, "decoder_blocks": 3},
    "mbrs": {"message_bits": 16, "size": 64, "channels": 8, "plane": 16, "blocks": 1},
    "dwtcnn": {"message_bits": 16, "size": 64, "channels": 8, "plane": 4, "wavelet": "db2"},
    "tsdl": {"message_bits": 16, "size": 64, "channels": 8, "plane": 8, "encoder_blocks": 2, "decoder_blocks": 1},
    "cin": {"message_bits": 16, "size": 64, "channels": 8, "plane": 8, "couplings": 2, "growth": 4},
    "stegastamp": {"message_bits": 16, "size": 64, "channels": 8, "plane": 8, "depth": 3},
}


@pytest.mark.parametrize("family", zoo.families())
def test_family_contract(family):
    model = zoo.build(family, **SMALL[family])
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, model.size, model.size, generator=generator, requires_grad=True)
    message = torch.randint(0, 2, (2, model.message_bits), generator=generator).float() * 2 - 1
    residual = model.residual(x, message)
    assert residual.shape == x.shape
    logits = model.decode(x + residual)
    assert logits.shape == (2, model.message_bits)
    loss = logits.sum()
    for heavy in (False, True):  # every training path: families with a branch per kind of attack use both
        logits, extra = model.decode_for_training(x + residual, heavy, (message > 0).float())
        assert logits.shape == (2, model.message_bits)
        loss = loss + logits.sum() + (0 if extra is None else extra)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", zoo.families())
def test_family_decodes_any_input_size(family):
    model = zoo.build(family, **SMALL[family]).eval()
    for height, width in [(64, 64), (96, 200), (301, 77)]:
        assert model.decode(torch.rand(1, 3, height, width)).shape == (1, model.message_bits)


def test_unknown_family():
    with pytest.raises(wmark.WmarkError, match="unknown model family"):
        zoo.build("nope")


@pytest.mark.parametrize("name", [card.name for card in zoo.list_cards()])
def test_committed_checkpoint_matches_expected(name, photo):
    """Fixed input → expected raw bits, bit accuracy and PSNR (CompressAI's tests/expected)."""
    expected = json.loads((EXPECTED / f"{name}.json").read_text())
    marker = wmark.load(name, device="cpu")
    codeword = marker.codeword(codeword=expected["codeword"])
    x = wmark.io.image.read_image(photo).rgb
    marked = pipeline.quantize(marker.embed_tensor(x, codeword))
    decoded = (marker.logits(marked) > 0).to(torch.uint8)
    accuracy = float((decoded == codeword).float().mean())
    assert "".join(map(str, decoded.tolist())) == expected["decoded"]
    assert accuracy >= expected["bit_accuracy"]
    assert float(psnr(marked, x)) == pytest.approx(expected["psnr"], abs=0.05)


@pytest.mark.parametrize("card", zoo.list_cards(), ids=lambda card: card.name)
def test_inference_form_keeps_every_checkpoints_outputs(card):
    """Batch norms folded and, on a CPU, channels-last weights: the same logits and residuals."""
    plain, folded = zoo.load_model(card).eval(), for_inference(zoo.load_model(card), torch.device("cpu"))
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last)
               for m in folded.modules() if isinstance(m, torch.nn.Conv2d))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) and isinstance(prev, torch.nn.Conv2d)
                   for seq in folded.modules() if isinstance(seq, torch.nn.Sequential)
                   for prev, m in zip(list(seq), list(seq)[1:]))
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, plain.size, plain.size, generator=generator)
    message = torch.randint(0, 2, (4, plain.message_bits), generator=generator).float() * 2 - 1
    with torch.no_grad():
        assert (plain.decode(x) - folded.decode(x)).abs().max() < 1e-4
        assert (plain.residual(x, message) - folded.residual(x, message)).abs().max() < 1e-5
        if hasattr(plain, "residuals_on"):
            assert (plain.residuals_on(x[:1], message) - folded.residuals_on(x[:1], message)).abs().max() < 1e-5


@pytest.mark.parametrize("card", zoo.list_cards(), ids=lambda c: c.name)
def test_committed_card_is_complete(card):
    for key in ("family", "kwargs", "bits", "data_bits", "size", "strength", "sha256", "training", "metrics"):
        assert key in card.data, key
    domain = Domain.from_dict(card.data.get("domain"))  # a domain of C codeword parts carries C times the model's bits
    assert card.data["bits"] == domain.codeword_bits(card.kwargs["message_bits"])
    assert zoo.sha256_file(card.path / zoo.WEIGHTS) == card.data["sha256"]


def test_default_is_committed():
    assert zoo.default_name() in [card.name for card in zoo.list_cards()]


@pytest.mark.parametrize("card", zoo.list_cards(), ids=lambda c: c.name)
def test_payload_code_for_committed_checkpoint(card):
    """The checkpoint's bit count gets a working code: capacity stated, errors up to the limit corrected."""
    from wmark.payload import PayloadCode

    code = PayloadCode(card.data["bits"])
    assert code.capacity_bytes == card.data["capacity_bytes"] and code.data_bits == card.data["data_bits"]
    message = bytes(range(1, code.capacity_bytes + 1))
    logits = code.encode(message).float() * 8 - 4
    for symbol in range(code.parity_symbols // 2):
        logits[symbol * code.symbol_bits] *= -1  # scrambling permutes positions: errors land anywhere
    assert code.decode(logits).data == message


def test_tsdl_decoder_output_stays_near_zero_without_a_mark(photo):
    """Liu et al. 2019: the decoder's output on an unmarked image sits near 0 (detection leans on it)."""
    marker = wmark.load("tsdl-64", device="cpu")
    x = wmark.io.image.read_image(photo).rgb
    codeword = torch.randint(0, 2, (marker.bits,), generator=torch.Generator().manual_seed(5)).to(torch.uint8)
    marked = pipeline.quantize(marker.embed_tensor(x, codeword))
    unmarked_output, marked_output = marker.logits(x).abs().mean(), marker.logits(marked).abs().mean()
    assert unmarked_output < marked_output / 3


def _cin_with_random_couplings():
    """A small CIN whose coupling functions are far from the identity, so inverting them is a real test."""
    model = zoo.build("cin", **SMALL["cin"]).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for block in model.couplings:
            for subnet in (block.phi, block.rho, block.eta):
                subnet.out.weight.copy_(torch.randn(subnet.out.weight.shape, generator=generator) * 0.1)
    return model


def test_cin_coupling_blocks_invert_exactly():
    """Ma et al. 2022: the invertible decoder is the embedding network run backwards."""
    model = _cin_with_random_couplings()
    generator = torch.Generator().manual_seed(2)
    image = torch.rand(2, 3, 64, 64, generator=generator) * 2 - 1
    message_half = torch.randn(2, 12, 32, 32, generator=generator)
    with torch.no_grad():
        marked_half, leftover = model.couple(model.to_bands(image), message_half)
        assert (marked_half - model.to_bands(image)).abs().max() > 0.01
        image_half, recovered = model.uncouple(marked_half, leftover)
        assert torch.allclose(recovered, message_half, atol=1e-4)
        assert torch.allclose(model.from_bands(image_half), image, atol=1e-4)


def test_cin_marked_image_inverts_to_the_message_plane():
    """The residual in [0, 1] is the coupling output in [-1, 1]: given the leftover half, running the
    blocks backwards on the marked image gives back the message plane."""
    model = _cin_with_random_couplings()
    generator = torch.Generator().manual_seed(5)
    x = torch.rand(2, 3, 64, 64, generator=generator)
    message = torch.randint(0, 2, (2, model.message_bits), generator=generator).float() * 2 - 1
    with torch.no_grad():
        plane = model.message_net(model.message_in(message).view(2, model.channels, model.plane, model.plane))
        _, leftover = model.couple(model.to_bands(x * 2 - 1), plane)
        marked = x + model.residual(x, message)
        _, recovered = model.uncouple(model.to_bands(marked * 2 - 1), leftover)
    assert torch.allclose(recovered, plane, atol=1e-4)


class _FixedSelector(torch.nn.Module):
    def forward(self, image):
        return torch.tensor([[4.0], [-4.0]])  # first image heavy, second light


def test_cin_picks_the_decoder_branch_per_image():
    """The noise selector decides for each image, not for the batch."""
    model = _cin_with_random_couplings()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        alone = torch.cat([model.decode(x[i : i + 1]) for i in range(2)])
        assert torch.allclose(model.decode(x), alone, atol=1e-5)
        model.decoder_selector = _FixedSelector()
        logits = model.decode(x)
        assert torch.equal(logits[0], model.decode_robust(x)[0])
        assert torch.equal(logits[1], model.decode_invertible(x)[1])


@pytest.mark.parametrize("robust_reads_better", [True, False])
def test_cin_selector_learns_to_pick_the_branch_that_reads_more_bits(robust_reads_better):
    """The noise selector's label is which branch reads the batch's bits (the invertible one on a tie), whatever
    the kind of attack."""
    model = zoo.build("cin", **SMALL["cin"])
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    robust, invertible = ((decode(x) > 0).float().detach() for decode in (model.decode_robust, model.decode_invertible))
    assert not torch.equal(robust, invertible)
    targets = robust if robust_reads_better else invertible
    before = model.heavy_logit(x).mean().item()
    optimizer = torch.optim.SGD(model.decoder_selector.parameters(), lr=0.5)
    for heavy in (True, False):
        _, extra = model.decode_for_training(x, heavy, targets)
        optimizer.zero_grad()
        extra.backward()
        optimizer.step()
        after = model.heavy_logit(x).mean().item()
        assert (after > before) if robust_reads_better else (after < before)
        before = after


def test_cin_decoder_only_training_keeps_the_invertible_branch():
    """The invertible branch's decoder is fixed with the invertible pair; the robust branch and the selector train."""
    model = zoo.build("cin", **SMALL["cin"]).train()
    model.freeze_encoder()
    training = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert training == {"decoder_robust", "decoder_selector"}
    assert not model.decoder_message.training and model.decoder_robust.training


def test_stegastamp_spatial_transformer_starts_as_the_identity_and_warps():
    """Tancik et al. 2020: the decoder resamples its input through a learned affine warp before reading it."""
    from wmark.models.stegastamp import WARP_SCALE

    model = zoo.build("stegastamp", **SMALL["stegastamp"]).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(model.warp(x), x, atol=1e-5)
        assert torch.allclose(model.decode(x), model.decoder_read(x - 0.5), atol=1e-5)
        shift = 4  # pixels: x translation in affine_grid's [-1, 1] coordinates is 2 * shift / width
        model.decoder_localize[-1].bias.copy_(torch.tensor([0, 0, 2 * shift / 64 / WARP_SCALE, 0, 0, 0]))
        assert torch.allclose(model.warp(x)[..., :-shift], x[..., shift:], atol=1e-4)


@pytest.mark.parametrize("size, plane", [(32, 8), (128, 16), (128, 32)])
def test_stegastamp_other_sizes_decode(size, plane):
    model = zoo.build("stegastamp", message_bits=8, size=size, channels=4, plane=plane, depth=3).eval()
    assert model.decode(torch.rand(1, 3, size, size)).shape == (1, 8)


def test_stegastamp_refuses_a_plane_too_small_for_its_decoder():
    with pytest.raises(wmark.WmarkError, match="plane times 1, 2, 4 or 8"):
        zoo.build("stegastamp", size=128, plane=8)


@pytest.mark.parametrize("family", ["mbrs", "hidden"])
def test_residuals_on_one_image_equal_residuals_of_the_image_repeated(family):
    torch.manual_seed(0)
    model = zoo.build(family, message_bits=8, size=32).eval()
    grey = torch.full((1, 3, 32, 32), 0.5)
    messages = torch.randn(5, 8).sign()
    with torch.no_grad():
        shared, repeated = model.residuals_on(grey, messages), model.residual(grey.expand(5, -1, -1, -1), messages)
    assert torch.allclose(shared, repeated, atol=1e-6)
