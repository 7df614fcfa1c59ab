"""The Python API on tensors, PIL images, arrays and files, with the default checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import wmark
from wmark.io.image import read_image


@pytest.fixture(scope="module")
def marker():
    return wmark.load(device="cpu")


def test_round_trip_on_a_photo_file(marker, photo, tmp_path):
    before = photo.read_bytes()
    report = marker.embed_file(photo, tmp_path / "marked.png", message="hi!")
    assert photo.read_bytes() == before
    assert report.psnr >= 38
    found = marker.extract(tmp_path / "marked.png")
    assert found.detected and found.message == "hi!" and found.p_value <= 1e-6


def test_key_protects_the_message(marker, photo, tmp_path):
    marker.embed_file(photo, tmp_path / "keyed.png", message="ab", key="secret")
    assert marker.extract(tmp_path / "keyed.png", key="secret").message == "ab"
    assert not marker.extract(tmp_path / "keyed.png", key="other").detected


def test_unmarked_photo_is_not_detected(marker, photo):
    assert not marker.detect(photo).detected
    assert not marker.detect(photo, expect="hi!").detected


def test_detect_with_expected_message(marker, photo, tmp_path):
    marker.embed_file(photo, tmp_path / "m.png", message="hi!")
    result = marker.detect(tmp_path / "m.png", expect="hi!")
    assert result.detected and result.method == "expect" and result.matching_bits >= 60


def test_detection_confidence_tells_another_message_from_no_mark(marker, photo, tmp_path):
    marker.embed_file(photo, tmp_path / "bye.png", message="bye")
    other, unmarked = marker.detect(tmp_path / "bye.png", expect="hi!"), marker.detect(photo, expect="hi!")
    assert not other.detected and not unmarked.detected
    assert other.bit_confidence > 0.95 and unmarked.bit_confidence < other.bit_confidence
    assert marker.detect(tmp_path / "bye.png").bit_confidence == marker.extract(tmp_path / "bye.png").bit_confidence


def test_raw_bits_round_trip(marker, photo, tmp_path):
    bits = "".join(str(b) for b in torch.randint(0, 2, (marker.bits,), generator=torch.Generator().manual_seed(3)).tolist())
    report = marker.embed_file(photo, tmp_path / "raw.png", codeword=bits)
    assert report.codeword == bits
    read = marker.extract(tmp_path / "raw.png").codeword
    # Raw bits carry no ECC, and the default's mark is faint by design (a median FLIP half a JPEG 75 re-save's):
    # on this 512 px photo a bit or two of 192 may flip, which the Reed-Solomon code of a message corrects.
    assert sum(a == b for a, b in zip(read, bits)) >= 0.99 * marker.bits


def test_pil_and_numpy_inputs_keep_their_kind(marker, photo):
    image = Image.open(photo)
    marked = marker.embed(image, message="hi!")
    assert isinstance(marked, Image.Image) and marked.size == image.size
    array = np.asarray(image)
    assert marker.embed(array, message="hi!").dtype == np.uint8
    assert marker.extract(marked).message == "hi!"


def test_tensor_batch(marker, photo):
    x = read_image(photo).rgb.repeat(2, 1, 1, 1)
    marked = marker.embed(x, message="hi!")
    assert marked.shape == x.shape and marked.dtype == torch.float32


@pytest.mark.parametrize("kwargs,match", [
    ({}, "exactly one"),
    ({"message": "a", "codeword": "0"}, "exactly one"),
    ({"message": "far too long for this model"}, "at most"),
    ({"codeword": "0101"}, "bits"),
    ({"hex": "zz"}, "hex"),
])
def test_payload_errors(marker, kwargs, match):
    with pytest.raises(wmark.WmarkError, match=match):
        marker.codeword(**kwargs)


def test_refuses_to_overwrite_input(marker, photo, tmp_path):
    copy = tmp_path / "in.jpg"
    copy.write_bytes(photo.read_bytes())
    with pytest.raises(wmark.WmarkError, match="--force"):
        marker.embed_file(copy, copy, message="hi!")
    assert copy.read_bytes() == photo.read_bytes()


@pytest.fixture(scope="module")
def tiny(untrained_checkpoint):
    return wmark.load(untrained_checkpoint, device="cpu")


def test_alpha_survives_embedding_bit_exact(tiny, tmp_path):
    generator = torch.Generator().manual_seed(5)
    rgba = (torch.rand(96, 128, 4, generator=generator) * 255).to(torch.uint8).numpy()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    tiny.embed_file(tmp_path / "in.png", tmp_path / "out.png", codeword="1" * tiny.bits,
                    force=True, verify=False)  # untrained: loud, and it reads nothing back
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])


def test_sixteen_bit_grey_keeps_its_depth(tiny, tmp_path):
    ramp = np.linspace(0, 65535, 96 * 128).reshape(96, 128).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "in16.png")
    tiny.embed_file(tmp_path / "in16.png", tmp_path / "out16.png", codeword="0" * tiny.bits, strength=0.01, verify=False)
    out = np.asarray(Image.open(tmp_path / "out16.png"))
    assert out.dtype == np.uint16 and len(np.unique(out)) > 5000


def test_pil_rgba_keeps_alpha(tiny):
    image = Image.new("RGBA", (100, 80), (10, 200, 30, 77))
    marked = tiny.embed(image, codeword="1" * tiny.bits)
    assert marked.mode == "RGBA" and set(np.asarray(marked)[..., 3].ravel()) == {77}


@pytest.mark.parametrize("strength", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_strength(tiny, strength):
    with pytest.raises(wmark.WmarkError, match="strength"):
        tiny.embed(torch.rand(1, 3, 64, 64), codeword="1" * tiny.bits, strength=strength)


@pytest.mark.parametrize("fpr", [0.0, 1.5, -1e-6])
def test_bad_fpr(tiny, fpr):
    with pytest.raises(wmark.WmarkError, match="false-positive"):
        tiny.detect(torch.rand(1, 3, 64, 64), fpr=fpr)


def test_extract_refuses_a_batch(tiny):
    with pytest.raises(wmark.WmarkError, match="one image at a time"):
        tiny.extract(torch.rand(2, 3, 64, 64))
