"""Contract tests for every registered attack, plus spec parsing, codecs and combinators."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance

import attacks
from attacks import AttackError

VIDEO = [n for n in ("h264", "h265", "vp9", "av1") if n in attacks.names()]


def images(shape, seed=0):
    """Smooth random content with a little texture, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    *lead, c, h, w = shape
    n = int(np.prod(lead))
    base = F.interpolate(torch.rand(n, c, 6, 6, generator=g), size=(h, w), mode="bicubic", align_corners=False)
    x = base + 0.05 * torch.randn(n, c, h, w, generator=g)
    return x.clamp(0, 1).reshape(shape)


def run(attack, x, params=None, cover=None):
    if attack.needs_cover and cover is None:
        cover = images(x.shape, seed=99)
    return attack(x, params, cover=cover)


@pytest.fixture(params=attacks.names())
def name(request):
    return request.param


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (2, 3, 3, 32, 32)], ids=["image", "clip"])
def test_contract(name, shape):
    attack = attacks.create(name)
    assert attack.grad in attacks.GRADS and attack.__doc__
    x = images(shape)
    rng = torch.get_rng_state()
    params = attack.sample(x.shape, torch.Generator().manual_seed(1))
    y = run(attack, x, params)
    run(attack, x)  # fresh params from the attack's own generator
    assert torch.equal(torch.get_rng_state(), rng), "touched the global RNG"
    assert tuple(y.shape) == attack.output_shape(x.shape, params)
    if not attack.changes_size:
        assert y.shape == x.shape
    assert y.dtype == x.dtype and y.device == x.device and torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 1
    # Replay: same params, same bits; same seed, same params.
    assert torch.equal(run(attack, x, params), y)
    again = attack.sample(x.shape, torch.Generator().manual_seed(1))
    assert torch.equal(run(attack, x, again), y)


@pytest.mark.parametrize("name", [n for n in attacks.names() if attacks.create(n).grad != "none"])
def test_gradient(name):
    attack = attacks.create(name)
    x = images((2, 3, 32, 32)).requires_grad_()
    y = run(attack, x)
    weights = torch.linspace(-1, 1, y.numel()).view(y.shape)
    (y * weights).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# Settings that must leave the input as it is: True = bit for bit, False = to 1e-6.
NEUTRAL = {
    "identity": ("identity", True),
    "blur": ("blur:sigma=0", True),
    "noise": ("noise:std=0", True),
    "salt_pepper": ("salt_pepper:amount=0", True),
    "brightness": ("brightness:delta=0", True),
    "gain": ("gain:factor=1", True),
    "contrast": ("contrast:factor=1", False),
    "saturation": ("saturation:factor=1", False),
    "hue": ("hue:shift=0", False),
    "gamma": ("gamma:gamma=1", True),
    "sharpen": ("sharpen:amount=0", True),
    "median": ("median:size=1", True),
    "resize": ("resize:scale=1", False),
    "crop": ("crop:scale=1", True),
    "rotate": ("rotate:degrees=0", False),
    "translate": ("translate:dx=0,dy=0", True),
    "perspective": ("perspective:shift=0", False),
    "cropout": ("cropout:scale=1", True),
    "crop_zero": ("crop_zero:scale=1", True),
    "dropout": ("dropout:keep=1", True),
}
# No setting leaves the input unchanged (lossy codecs and their proxies, flips).
NOT_NEUTRAL = {
    "hflip", "grayscale", "jpeg", "webp", "jpeg_cubic", "jpeg_diff", "jpeg_mask", "jpeg_drop",
    "jpeg_mix", "h264_proxy", "h264", "h265", "vp9", "av1",
}


def test_every_attack_is_classified_neutral_or_not(name):
    assert (name in NEUTRAL) != (name in NOT_NEUTRAL), f"classify {name!r} in NEUTRAL or NOT_NEUTRAL"


@pytest.mark.parametrize("name", sorted(set(NEUTRAL) & set(attacks.names())))
def test_neutral_setting_is_identity(name):
    spec, exact = NEUTRAL[name]
    x = images((2, 3, 32, 32))
    y = run(attacks.create(spec), x, cover=torch.zeros_like(x))
    assert torch.equal(y, x) if exact else torch.allclose(y, x, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in attacks.names() if attacks.create(n).grad == "exact"])
def test_gradcheck_exact(name):
    """float64 gradcheck at fixed params for every attack whose gradient is exact."""
    attack = attacks.create(name)
    g = torch.Generator().manual_seed(0)
    x = (0.2 + 0.6 * torch.rand(1, 3, 8, 8, generator=g, dtype=torch.float64)).requires_grad_()
    cover = torch.rand(1, 3, 8, 8, generator=g, dtype=torch.float64)
    params = attack.sample(x.shape, g)
    assert torch.autograd.gradcheck(lambda v: run(attack, v, params, cover), (x,))


def test_describe_is_json():
    rows = json.loads(json.dumps(attacks.describe()))
    assert [r["name"] for r in rows] == attacks.names()
    for row in rows:
        assert row["grad"] in attacks.GRADS and row["doc"]
        for spec in row["params"].values():
            assert {"default", "doc"} <= set(spec)


def test_committed_catalogue_matches_the_registry():
    """attacks/catalogue.json is regenerated with `python -m attacks.catalogue`."""
    from attacks import catalogue, spec

    assert json.loads(catalogue.FILE.read_text())["attacks"] == json.loads(json.dumps(spec.catalogue()))
    assert catalogue.available() == json.loads(json.dumps(attacks.describe()))


def test_catalogue_drops_codecs_this_build_lacks(tmp_path):
    from attacks import catalogue

    entries = json.loads(catalogue.FILE.read_text())["attacks"]
    missing = {"encoder": "no-such-encoder", "decoder": "h264"}
    changed = [{**e, "requires": missing} if e["name"] == "h264" else e for e in entries]
    (tmp_path / "c.json").write_text(json.dumps({"attacks": changed}))
    names = [e["name"] for e in catalogue.available(tmp_path / "c.json")]
    assert "h264" not in names and "jpeg" in names


# -- spec parsing -------------------------------------------------------------


def test_quality_zero_is_kept():
    assert attacks.create("jpeg:quality=0").options["quality"] == 0
    assert attacks.create("jpeg", quality=0).options["quality"] == 0
    x = images((1, 3, 32, 32))
    assert not torch.equal(attacks.create("jpeg:quality=0")(x), attacks.create("jpeg:quality=100")(x))


@pytest.mark.parametrize(
    "spec, kwargs, key, expected",
    [
        ("jpeg:quality=40-80", {}, "quality", (40, 80)),
        ("jpeg:quality=(40,80)", {}, "quality", (40, 80)),
        ("jpeg", {"quality": (40, 80)}, "quality", (40, 80)),
        ("jpeg: quality = 70 , subsampling=444", {}, "subsampling", "444"),
        ("jpeg", {"subsampling": 444}, "subsampling", "444"),
        ("brightness:delta=-0.2-0.1", {}, "delta", (-0.2, 0.1)),
        ("brightness:delta=-0.2", {}, "delta", -0.2),
        ("noise:std=1e-2", {}, "std", 0.01),
        ("HEVC:crf=30", {}, "crf", 30),
    ],
)
def test_spec_values(spec, kwargs, key, expected):
    if spec.lower().startswith("hevc") and "h265" not in attacks.names():
        pytest.skip("no H.265 encoder")
    assert attacks.create(spec, **kwargs).options[key] == expected


def test_range_draws_per_sample_within_bounds():
    attack = attacks.create("jpeg:quality=40-80")
    q = attack.sample((64, 3, 8, 8), torch.Generator().manual_seed(0))["quality"]
    assert q.dtype == torch.int64 and q.min() >= 40 and q.max() <= 80 and len(set(q.tolist())) > 5
    other = attack.sample((64, 3, 8, 8), torch.Generator().manual_seed(1))["quality"]
    assert not torch.equal(q, other)
    # Without a generator: the attack's own seeded generator, advancing per call.
    fresh = attacks.create("jpeg:quality=40-80")
    first, second = (fresh.sample((8, 3, 8, 8))["quality"] for _ in range(2))
    assert not torch.equal(first, second)
    assert torch.equal(first, attacks.create("jpeg:quality=40-80").sample((8, 3, 8, 8))["quality"])


@pytest.mark.parametrize(
    "spec, kwargs, message",
    [
        ("nope", {}, "unknown attack 'nope'; valid: "),
        ("jpeg:q=50", {}, "unknown parameter 'q'; valid: quality, subsampling"),
        ("jpeg:quality=abc", {}, "bad value"),
        ("jpeg:quality=101", {}, "in [0, 100]"),
        ("jpeg:quality=50.5", {}, "an integer"),
        ("jpeg:quality=80-40", {}, "bad value"),
        ("jpeg:subsampling=411", {}, "one of 444, 422, 420"),
        ("jpeg:quality", {}, "expected key=value"),
        ("jpeg:quality=50", {"quality": 60}, "given both"),
        ("jpeg+resize", {"quality": 60}, "not to a chain"),
        ("noise:std=nan", {}, "bad value"),
        ("jpeg", {"quality": True}, "bad value"),
        ("", {}, "non-empty"),
    ],
)
def test_spec_errors(spec, kwargs, message):
    with pytest.raises(AttackError) as err:
        attacks.create(spec, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_ranges_refused_where_fixed():
    if "vp9" not in attacks.names():
        pytest.skip("no VP9 encoder")
    with pytest.raises(AttackError, match="preset"):
        attacks.create("vp9:preset=2-4")


def test_unknown_name_lists_valid_names():
    with pytest.raises(AttackError) as err:
        attacks.create("jpg")
    assert all(n in str(err.value) for n in attacks.names())


@pytest.mark.parametrize(
    "spec, message",
    [
        ("jpeg:quality=50,p=2", "bad value 2.0 for 'p'; expected a number in [0, 1]"),
        ("jpeg:quality=50,p=0.2-0.4", "for 'p'"),
        ("blur:per=sample", "'per' goes with 'p'"),
        ("blur:p=0.5,per=each", "one of batch, sample"),
        ("blur:strength=2", "unknown parameter 'strength'; valid: sigma, p, per"),
        ("median:size=4", "an odd integer in [1, 15]"),
        ("translate:mode=mirror", "one of fill, wrap"),
        ("gamma:gamma=0", "in [0.1, 10]"),
        ("salt_pepper:amount=1.5", "in [0, 1]"),
        ("blur|nope", "unknown attack 'nope'"),
    ],
)
def test_new_spec_errors(spec, message):
    with pytest.raises(AttackError) as err:
        attacks.create(spec)
    assert message in str(err.value)


def test_unavailable_codec_says_why(monkeypatch):
    """A codec this PyAV build lacks is named as such, with the valid names."""
    from attacks import base

    monkeypatch.setitem(base._UNAVAILABLE, "h266", "this PyAV (FFmpeg) build has no libvvenc + vvc")
    with pytest.raises(AttackError) as err:
        attacks.create("h266:crf=30")
    text = str(err.value)
    assert "'h266' is unavailable: this PyAV (FFmpeg) build has no libvvenc" in text
    assert "valid: " in text and all(n in text for n in attacks.names())
    # Every known codec is either usable or reported as missing.
    for codec in ("h264", "h265", "hevc", "vp9", "av1"):
        assert codec in base._REGISTRY or codec in base._ALIASES or codec in base._UNAVAILABLE


def test_missing_cover_is_an_error():
    x = images((1, 3, 16, 16))
    for spec in ("dropout", "cropout", "jpeg+dropout"):
        with pytest.raises(AttackError, match="cover"):
            attacks.create(spec)(x)


def test_cover_mixing():
    x, cover = torch.ones(2, 3, 32, 32), torch.zeros(2, 3, 32, 32)
    kept = attacks.create("cropout:scale=0.25")(x, cover=cover).mean((1, 2, 3))
    assert torch.allclose(kept, torch.full((2,), 0.25))
    kept = attacks.create("dropout:keep=0.3")(x, cover=cover).mean()
    assert 0.2 < kept < 0.4


def test_crop_zero_keeps_a_box_in_place_and_blacks_out_the_rest():
    x = 0.1 + 0.9 * images((2, 3, 32, 32))
    attack = attacks.create("crop_zero:scale=0.25")
    y = attack(x, attack.sample(x.shape, torch.Generator().manual_seed(0)))
    kept = (y != 0).all(1, keepdim=True)
    assert torch.equal(kept.sum((1, 2, 3)), torch.tensor([256, 256]))  # a 16x16 box of the 32x32 frame
    assert torch.equal(torch.where(kept, x, 0), y)


# -- combinators --------------------------------------------------------------


def test_chain():
    chain = attacks.create("jpeg:quality=50+resize:scale=0.5+crop:scale=0.25")
    assert isinstance(chain, attacks.Compose) and chain.changes_size and chain.grad == "ste"
    x = images((2, 3, 64, 64))
    params = chain.sample(x.shape, torch.Generator().manual_seed(0))
    y = chain(x, params)
    assert y.shape == (2, 3, 16, 16) == chain.output_shape(x.shape, params)
    assert torch.equal(chain(x, params), y)
    step_by_step = x
    for attack, p in zip(chain.attacks, params["steps"]):
        step_by_step = attack(step_by_step, p)
    assert torch.equal(step_by_step, y)


def test_one_of_picks_per_call():
    pick = attacks.create(["identity", "jpeg:quality=10", "resize:scale=0.5"])
    assert isinstance(pick, attacks.OneOf) and pick.changes_size
    g = torch.Generator().manual_seed(0)
    picks = {pick.sample((1, 3, 16, 16), g)["index"] for _ in range(30)}
    assert picks == {0, 1, 2}
    x = images((2, 3, 32, 32))
    params = pick.sample(x.shape, g)
    assert torch.equal(pick(x, params), pick(x, params))


def test_choice_spec_and_per_sample():
    assert isinstance(attacks.create("jpeg|blur"), attacks.OneOf)
    pick = attacks.create(["brightness:delta=0.5", "identity", "hflip"], per="sample")
    assert pick.per == "sample" and pick.grad == "exact"
    x = images((16, 3, 16, 16))
    params = pick.sample(x.shape, torch.Generator().manual_seed(0))
    y = pick(x, params)
    assert torch.equal(pick(x, params), y)
    index = params["index"]
    assert set(index.tolist()) == {0, 1, 2}
    for i, want in enumerate([(x + 0.5).clamp(0, 1), x, x.flip(-1)]):
        assert torch.equal(y[index == i], want[index == i])
    clips = images((4, 2, 3, 16, 16))
    assert pick(clips).shape == clips.shape
    mixed = attacks.create(["dropout:keep=0", "identity"], per="sample")
    params = mixed.sample(x.shape, torch.Generator().manual_seed(0))
    y = mixed(x, params, cover=torch.zeros_like(x))
    assert y[params["index"] == 0].abs().sum() == 0 and torch.equal(y[params["index"] == 1], x[params["index"] == 1])
    with pytest.raises(AttackError, match="keep the size; resize"):
        attacks.create(["blur", "resize"], per="sample")
    with pytest.raises(AttackError, match="only the keyword per"):
        attacks.create("blur|noise", sigma=2)


def test_maybe_applies_with_probability():
    maybe = attacks.create("brightness:delta=0.5,p=0.25,per=sample")
    assert isinstance(maybe, attacks.Maybe) and maybe.p == 0.25
    x = images((400, 3, 4, 4))
    params = maybe.sample(x.shape, torch.Generator().manual_seed(0))
    y = maybe(x, params)
    changed = (y != x).flatten(1).any(1)
    assert torch.equal(changed, params["index"] == 0) and 70 < int(changed.sum()) < 130
    batch = attacks.Maybe(attacks.create("resize:scale=0.5"), 0.5)
    g = torch.Generator().manual_seed(0)
    sizes = {batch(x[:2], batch.sample((2, 3, 4, 4), g)).shape[-1] for _ in range(20)}
    assert sizes == {2, 4}
    assert attacks.create("jpeg:p=0").sample((2, 3, 8, 8))["index"] == 1


def test_jpeg_mix_branches():
    mix = attacks.create("jpeg_mix:quality=30")
    x = images((2, 3, 32, 32))
    g = torch.Generator().manual_seed(0)
    seen = {}
    for _ in range(30):
        params = mix.sample(x.shape, g)
        seen.setdefault(params["index"], mix(x, params))
    assert set(seen) == {0, 1, 2}
    assert torch.equal(seen[0], attacks.create("jpeg:quality=30")(x))
    assert torch.equal(seen[2], x)


# -- real codecs --------------------------------------------------------------


@pytest.mark.parametrize("subsampling, code", [("420", 2), ("444", 0)])
def test_jpeg_matches_pillow(subsampling, code):
    x = images((2, 3, 40, 56))
    u8 = (x * 255).round().to(torch.uint8)
    out = attacks.create("jpeg", quality=35, subsampling=subsampling)(u8.float() / 255)
    for img, got in zip(u8.permute(0, 2, 3, 1).numpy(), out):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=35, subsampling=code)
        expected = torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1)
        assert torch.equal((got * 255).round().to(torch.uint8), expected)


def test_webp_matches_pillow():
    x = (images((1, 3, 32, 32)) * 255).round() / 255
    buf = io.BytesIO()
    Image.fromarray((x[0] * 255).round().byte().permute(1, 2, 0).numpy()).save(buf, format="WEBP", quality=20)
    expected = torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1)
    assert torch.equal((attacks.create("webp:quality=20")(x)[0] * 255).round().byte(), expected)


def test_straight_through_gradient_is_identity():
    x = images((1, 3, 16, 16)).requires_grad_()
    w = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    (attacks.create("jpeg:quality=10")(x) * w).sum().backward()
    assert torch.equal(x.grad, w)


@pytest.mark.parametrize("codec", VIDEO)
def test_video_codec_roundtrip(codec):
    attack = attacks.create(codec, crf=40)
    # Odd height: padded for yuv420p, cropped back. Noise at 64 px wide over 5 frames
    # made unpadded x265 vary from run to run.
    x = torch.rand(1, 5, 3, 33, 64, generator=torch.Generator().manual_seed(0))
    y = attack(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert (y - x).abs().mean() > 1e-3
    # An image batch is a batch of one-frame clips.
    frames = x[:, 0]
    assert torch.equal(attack(frames), attack(frames.unsqueeze(1)).squeeze(1))


# Known defect: libx264 through PyAV 18 / FFmpeg 8.1 gives a different encode for the same frames and
# options in about one call in 200 inside a long-lived process (all frames differ, the I-frame too), even
# single-threaded; not reproduced in isolation. The other encoders replay exactly.
@pytest.mark.parametrize("codec", [
    pytest.param(c, marks=pytest.mark.xfail(reason="x264 occasionally not bit-exact; see comment", strict=False))
    if c == "h264" else c for c in VIDEO])
def test_video_codec_replays_exactly(codec):
    attack = attacks.create(codec, crf=40)
    x = torch.rand(1, 5, 3, 33, 64, generator=torch.Generator().manual_seed(0))
    y = attack(x)
    assert all(torch.equal(attack(x), y) for _ in range(3))


def test_video_crf_matters():
    if "h264" not in attacks.names():
        pytest.skip("no H.264 encoder")
    x = images((1, 3, 3, 32, 32))
    err = [(attacks.create("h264", crf=c)(x) - x).abs().mean() for c in (10, 45)]
    assert err[0] < err[1]


# -- clips and geometry ---------------------------------------------------------


@pytest.mark.parametrize("spec", ["rotate:degrees=-30-30", "crop:scale=0.5", "jpeg:quality=10-90", "perspective"])
def test_clip_params_shared_by_frames(spec):
    frame = images((2, 1, 3, 32, 32))
    y = attacks.create(spec)(frame.expand(2, 3, 3, 32, 32))
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])


def test_flip_translate_values():
    x = images((2, 3, 8, 10))
    assert torch.equal(attacks.create("hflip")(x), x.flip(-1))
    wrap = attacks.create("translate:dx=0.2,dy=-0.25,mode=wrap")(x)
    assert torch.equal(wrap, x.roll((-2, 2), dims=(-2, -1)))
    fill = attacks.create("translate:dx=0.2,dy=-0.25")(x)
    assert torch.equal(fill[..., :6, 2:], x[..., 2:, :8])
    assert fill[..., 6:, :].abs().sum() == 0 and fill[..., :2].abs().sum() == 0


def test_filters_and_colour_values():
    x = images((2, 3, 16, 16))
    med = attacks.create("median:size=3")(x)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    assert torch.equal(med, padded.unfold(2, 3, 1).unfold(3, 3, 1).flatten(-2).median(-1).values)
    sharp = attacks.create("sharpen:amount=1")(x)
    assert (sharp - x).abs().mean() > 1e-3 and sharp.std() > x.std()
    assert torch.allclose(attacks.create("gamma:gamma=2")(x), x**2)
    grey = attacks.create("grayscale")(x)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    assert torch.allclose(grey, attacks.create("saturation:factor=0")(x), atol=1e-6)
    sp = attacks.create("salt_pepper:amount=0.2")(images((1, 3, 256, 256)))
    black, white = (sp == 0).all(1).float().mean(), (sp == 1).all(1).float().mean()
    assert 0.08 < black < 0.12 and 0.08 < white < 0.12


def test_gain_matches_pillow_brightness():
    """`gain` is what Pillow's ImageEnhance.Brightness does to an 8-bit photo, to within its rounding."""
    pixels = (images((1, 3, 24, 24))[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    brighter = ImageEnhance.Brightness(Image.fromarray(pixels)).enhance(1.3)
    expected = torch.from_numpy(np.asarray(brighter)).permute(2, 0, 1).float()[None] / 255
    x = torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255
    assert (attacks.create("gain:factor=1.3")(x) - expected).abs().max() <= 1 / 255 + 1e-6
    assert (expected == 1).any()  # highlights clip, which a brightness offset of the same mean would not do


def test_resize_and_crop_sizes():
    x = images((2, 3, 64, 48))
    assert attacks.create("resize:scale=0.5")(x).shape == (2, 3, 32, 24)
    assert attacks.create("resize:scale=2,interpolation=nearest")(x).shape == (2, 3, 128, 96)
    assert attacks.create("resize:scale=1,width=0.75")(x).shape == (2, 3, 64, 36)  # an aspect change
    assert attacks.create("crop:scale=0.25")(x).shape == (2, 3, 32, 24)
    crop = attacks.create("crop:scale=0.25")
    params = crop.sample(x.shape, torch.Generator().manual_seed(3))
    t, l = int(params["top"][1]), int(params["left"][1])
    assert torch.equal(crop(x, params)[1], x[1, :, t : t + 32, l : l + 24])
