"""wmark.io.image and wmark.io.atomic: modes, formats, metadata, errors, atomic writes."""

import hashlib
import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from wmark.errors import WmarkError
from wmark.io.atomic import atomic_output
from wmark.io.image import (
    IMAGE_SUFFIXES,
    Picture,
    from_uint8,
    is_image_file,
    read_image,
    to_uint8,
    write_image,
)

H, W = 24, 32
LOSSY = {".jpg", ".webp"}
MAKE = 271
ORIENTATION = 274


def _rgb8(seed=0):
    """A smooth gradient with mild noise, so lossy round trips stay close."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([xx * 255 / W, yy * 255 / H, (xx + yy) * 255 / (H + W)], axis=-1)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).round().astype(np.uint8)


def _alpha(seed=1):
    a = np.random.default_rng(seed).integers(0, 256, (H, W), dtype=np.uint8)
    a[0, :4] = [0, 1, 254, 255]
    return a


def make_image(kind):
    rgb = Image.fromarray(_rgb8())
    if kind == "RGBA":
        return Image.merge("RGBA", [*rgb.split(), Image.fromarray(_alpha())])
    if kind == "LA":
        return Image.merge("LA", [rgb.convert("L"), Image.fromarray(_alpha())])
    if kind == "P+t":
        img = rgb.convert("P")
        img.info["transparency"] = int(np.asarray(img)[0, 0])
        return img
    if kind == "I;16":
        yy, xx = np.mgrid[0:H, 0:W]
        return Image.fromarray((xx * 2000 + yy * 37 + 1).astype(np.uint16))
    return rgb.convert(kind)


def _save(img, path, **kw):
    if path.suffix == ".png" and "transparency" in img.info:
        kw["transparency"] = img.info["transparency"]
    img.save(path, **kw)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# (source kind, extension, mode after write -> read)
CASES = [
    *[("RGB", e, "RGB") for e in (".png", ".jpg", ".webp", ".tif", ".bmp")],
    *[("RGBA", e, "RGBA") for e in (".png", ".webp", ".tif")],
    *[("L", e, "L") for e in (".png", ".jpg", ".tif", ".bmp")],
    *[("LA", e, "LA") for e in (".png", ".tif")],
    *[("P", e, "RGB") for e in (".png", ".tif", ".bmp")],
    ("P+t", ".png", "RGBA"),
    *[("1", e, "L") for e in (".png", ".tif", ".bmp")],
    *[("I;16", e, "I;16") for e in (".png", ".tif")],
    *[("CMYK", e, "CMYK") for e in (".jpg", ".tif")],
]


@pytest.mark.parametrize("kind,ext,out_mode", CASES, ids=[f"{k}{e}" for k, e, _ in CASES])
def test_round_trip(tmp_path, kind, ext, out_mode):
    src = _save(make_image(kind), tmp_path / f"src{ext}")
    before = _digest(src)
    p = read_image(src)
    assert p.rgb.dtype == torch.float32 and p.rgb.shape == (1, 3, H, W)
    assert 0 <= p.rgb.min() and p.rgb.max() <= 1
    assert p.bit_depth == (16 if kind == "I;16" else 8)
    decoded = Image.open(src)
    if kind == "I;16":
        expected = torch.from_numpy(np.asarray(decoded).astype(np.float32))
        assert torch.equal((p.rgb[0, 0] * 65535).round(), expected)
    else:
        assert torch.equal(p.rgb[0], from_uint8(np.asarray(decoded.convert("RGB"))))

    out = tmp_path / f"out{ext}"
    write_image(p, p.rgb, out)
    assert _digest(src) == before
    q = read_image(out)
    assert Image.open(out).mode == out_mode
    assert q.rgb.shape == p.rgb.shape
    if ext in LOSSY:
        assert (q.rgb - p.rgb).abs().mean() < 0.02
    else:
        assert torch.equal(q.rgb, p.rgb)
    assert (p.alpha is None) == (out_mode not in ("RGBA", "LA"))
    if p.alpha is not None:
        assert p.alpha.dtype == np.uint8 and p.alpha.shape == (H, W)
        np.testing.assert_array_equal(q.alpha, p.alpha)
    assert sorted(os.listdir(tmp_path)) == sorted([src.name, out.name])


def test_alpha_is_original_and_bit_exact_after_marking(tmp_path):
    src = _save(make_image("RGBA"), tmp_path / "a.png")
    p = read_image(src)
    np.testing.assert_array_equal(p.alpha, _alpha())
    noise = torch.randn(p.rgb.shape, generator=torch.Generator().manual_seed(0))
    marked = (p.rgb + 0.03 * noise).clamp(0, 1)
    for ext in (".png", ".webp", ".tif"):
        write_image(p, marked, tmp_path / f"m{ext}", quality=10)
        np.testing.assert_array_equal(read_image(tmp_path / f"m{ext}").alpha, _alpha())


def test_palette_transparency_becomes_alpha(tmp_path):
    img = make_image("P+t")
    p = read_image(_save(img, tmp_path / "p.png"))
    expected = np.asarray(img.convert("RGBA"))[..., 3]
    assert p.mode == "P" and (expected == 0).any()
    np.testing.assert_array_equal(p.alpha, expected)


def test_grey_written_as_bt601_luma(tmp_path):
    p = read_image(_save(make_image("L"), tmp_path / "g.png"))
    rgb = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(0))
    write_image(p, rgb, tmp_path / "o.png")
    r, g, b = rgb[0].double()
    expected = ((0.299 * r + 0.587 * g + 0.114 * b) * 255).round()
    got = torch.from_numpy(np.asarray(Image.open(tmp_path / "o.png")).astype(np.float64))
    assert (got - expected).abs().max() <= 1  # float32 luma may land on the other side of .5
    assert (got == expected).double().mean() > 0.99


def test_16bit_written_as_rounded_16bit(tmp_path):
    p = read_image(_save(make_image("I;16"), tmp_path / "g.png"))
    rgb = torch.full((3, H, W), 1000.4 / 65535)
    rgb[:, 0, 0] = 1000.6 / 65535
    write_image(p, rgb, tmp_path / "o.tif")
    out = np.asarray(Image.open(tmp_path / "o.tif"))
    assert Image.open(tmp_path / "o.tif").mode == "I;16"
    assert out[0, 0] == 1001 and out[0, 1] == 1000


def test_32bit_integer_grey(tmp_path):
    Image.fromarray(np.full((H, W), 40000, np.int32)).save(tmp_path / "i.tif")
    p = read_image(tmp_path / "i.tif")
    assert p.mode == "I" and p.bit_depth == 16
    write_image(p, p.rgb, tmp_path / "o.png")
    assert Image.open(tmp_path / "o.png").mode == "I;16"
    assert (np.asarray(Image.open(tmp_path / "o.png")) == 40000).all()
    Image.fromarray(np.full((H, W), 70000, np.int32)).save(tmp_path / "big.tif")
    with pytest.raises(WmarkError, match="big.tif"):
        read_image(tmp_path / "big.tif")


def test_grey_to_webp_is_stored_as_rgb(tmp_path):
    p = read_image(_save(make_image("L"), tmp_path / "g.png"))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    p.info["icc_profile"] = srgb[:16] + b"GRAY" + srgb[20:]  # header says grey
    write_image(p, p.rgb, tmp_path / "o.webp")
    out = Image.open(tmp_path / "o.webp")
    assert out.mode == "RGB" and "icc_profile" not in out.info  # a grey profile cannot describe RGB


def test_exif_orientation_applied_and_reset(tmp_path):
    rgb = _rgb8()
    rgb[:4, :4] = [255, 0, 0]  # a red top-left corner, as stored
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "wmark-test"
    src = tmp_path / "rot.jpg"
    Image.fromarray(rgb).save(src, exif=exif, quality=95, subsampling=0)
    p = read_image(src)
    assert p.rgb.shape == (1, 3, W, H)
    upright = np.asarray(Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_270)).astype(int)
    assert np.abs(to_uint8(p.rgb[0]).astype(int) - upright).mean() < 3
    write_image(p, p.rgb, tmp_path / "out.jpg")
    out = Image.open(tmp_path / "out.jpg")
    assert out.size == (H, W)
    assert out.getexif()[ORIENTATION] == 1 and out.getexif()[MAKE] == "wmark-test"
    assert read_image(tmp_path / "out.jpg").rgb.shape == (1, 3, W, H)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif"])
def test_icc_exif_dpi_kept(tmp_path, ext):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[MAKE] = "wmark-test"
    kw = {"icc_profile": icc, "exif": exif.tobytes()}
    if ext != ".webp":
        kw["dpi"] = (300, 300)
    src = _save(make_image("RGB"), tmp_path / f"src{ext}", **kw)
    p = read_image(src)
    write_image(p, p.rgb, tmp_path / f"out{ext}")
    out = Image.open(tmp_path / f"out{ext}")
    assert out.info["icc_profile"] == icc
    assert out.getexif()[MAKE] == "wmark-test"
    if ext != ".webp":
        assert tuple(round(float(d)) for d in out.info["dpi"]) == (300, 300)


def test_quality(tmp_path):
    p = read_image(_save(make_image("RGB"), tmp_path / "s.png"))
    sizes = {}
    for q in (0, 95, None):
        write_image(p, p.rgb, tmp_path / f"q{q}.jpg", quality=q)
        sizes[q] = (tmp_path / f"q{q}.jpg").stat().st_size
    assert sizes[0] < sizes[95] == sizes[None]
    for bad in (-1, 101, 9.5):
        with pytest.raises(WmarkError, match="quality"):
            write_image(p, p.rgb, tmp_path / "bad.jpg", quality=bad)


def test_uint8_helpers_round_and_clamp():
    x = torch.tensor([-0.2, 0.0, 10.4 / 255, 10.6 / 255, 1.0, 1.3]).view(1, 6, 1)
    assert to_uint8(x).ravel().tolist() == [0, 0, 10, 11, 255, 255]
    a = np.arange(256, dtype=np.uint8).reshape(4, 64, 1).repeat(3, axis=2)
    t = from_uint8(a)
    assert t.shape == (3, 4, 64) and t.dtype == torch.float32
    np.testing.assert_array_equal(to_uint8(t), a)
    assert to_uint8(torch.zeros(2, 3, 5, 7)).shape == (2, 5, 7, 3)


def test_is_image_file(tmp_path):
    (tmp_path / "a.PNG").write_bytes(b"x")
    (tmp_path / "b.txt").write_bytes(b"x")
    (tmp_path / "d.jpg").mkdir()
    assert is_image_file(tmp_path / "a.PNG")
    assert not is_image_file(tmp_path / "b.txt")
    assert not is_image_file(tmp_path / "d.jpg")
    assert not is_image_file(tmp_path / "missing.png")
    assert {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"} <= IMAGE_SUFFIXES


# ---- bad inputs -------------------------------------------------------------------------


def _one_line_error(fn, *args, name, **kw):
    with pytest.raises(WmarkError) as err:
        fn(*args, **kw)
    msg = str(err.value)
    assert name in msg and "\n" not in msg
    return msg


def test_missing_empty_directory_and_text(tmp_path):
    _one_line_error(read_image, tmp_path / "nope.png", name="nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty" in _one_line_error(read_image, tmp_path / "empty.png", name="empty.png")
    (tmp_path / "dir.png").mkdir()
    _one_line_error(read_image, tmp_path / "dir.png", name="dir.png")
    (tmp_path / "notes.jpg").write_text("this is not an image\n")
    assert "not a" in _one_line_error(read_image, tmp_path / "notes.jpg", name="notes.jpg")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif", ".bmp"])
def test_truncated(tmp_path, ext):
    full = _save(make_image("RGB"), tmp_path / f"full{ext}")
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _one_line_error(read_image, cut, name=cut.name)


def test_mpo_reads_first_frame(tmp_path):
    second = Image.fromarray(255 - _rgb8())
    make_image("RGB").save(tmp_path / "m.mpo", save_all=True, append_images=[second], quality=95)
    p = read_image(tmp_path / "m.mpo")
    assert p.format == "JPEG"
    assert np.abs(to_uint8(p.rgb[0]).astype(int) - _rgb8()).mean() < 8  # the inverse is ~120 away


def test_unsupported_mode_and_animation(tmp_path):
    Image.fromarray(np.zeros((H, W), np.float32)).save(tmp_path / "f.tif")
    assert "mode" in _one_line_error(read_image, tmp_path / "f.tif", name="f.tif")
    frames = [make_image("RGB"), make_image("L").convert("RGB")]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    assert "frames" in _one_line_error(read_image, tmp_path / "anim.png", name="anim.png")


@pytest.mark.parametrize(
    "kind,ext",
    [("RGB", ".gif"), ("RGB", ".txt"), ("RGBA", ".jpg"), ("RGBA", ".bmp"), ("LA", ".jpg"),
     ("LA", ".bmp"), ("P+t", ".jpg"), ("I;16", ".jpg"), ("I;16", ".webp"), ("I;16", ".bmp"),
     ("CMYK", ".png"), ("CMYK", ".webp")],
)
def test_unwritable_combinations(tmp_path, kind, ext):
    p = read_image(_save(make_image(kind), tmp_path / ("s.tif" if kind != "P+t" else "s.png")))
    before = set(os.listdir(tmp_path))
    _one_line_error(write_image, p, p.rgb, tmp_path / f"out{ext}", name=f"out{ext}")
    assert set(os.listdir(tmp_path)) == before


def test_missing_output_directory(tmp_path):
    p = read_image(_save(make_image("RGB"), tmp_path / "s.png"))
    _one_line_error(write_image, p, p.rgb, tmp_path / "no" / "out.png", name="out.png")
    (tmp_path / "taken.png").mkdir()
    _one_line_error(write_image, p, p.rgb, tmp_path / "taken.png", name="taken.png")
    assert sorted(os.listdir(tmp_path)) == ["s.png", "taken.png"]


# ---- atomic writes ----------------------------------------------------------------------


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    p = read_image(_save(make_image("RGB"), tmp_path / "s.png"))
    out = tmp_path / "out.png"
    out.write_bytes(b"previous")

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    assert "disk full" in _one_line_error(write_image, p, p.rgb, out, name="out.png")
    assert out.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["out.png", "s.png"]


def test_atomic_output(tmp_path):
    target = tmp_path / "clip.mp4"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and not tmp.exists()
        tmp.write_bytes(b"new")
        assert not target.exists()
    assert target.read_bytes() == b"new"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["clip.mp4"]


def test_picture_is_a_plain_dataclass():
    p = Picture(rgb=torch.zeros(1, 3, 2, 2), alpha=None, mode="RGB", format=None)
    assert p.info == {} and p.bit_depth == 8
