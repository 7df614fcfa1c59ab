"""Small inputs: each checkpoint's bit accuracy on downscaled photos after ordinary 4:2:0 codecs.

    python benchmarks/small_inputs.py [--val ../shared/data/val] [-m NAME ...]

Thumbnails and low-resolution video keep little of a mark: the 64 px residual is upscaled less, and
4:2:0 subsampling halves the chroma again. Each validation photo is downscaled (Lanczos) to a long
side of 160, 320, 480 and 640 px, marked with a random codeword at the card's strength and rounded to
8 bits, then (a) saved by Pillow as JPEG 75 with 4:2:0 chroma and (b) with 4:4:4 (the `jpeg` attack),
and (c) encoded with libx264 CRF 23 (yuv420p, through PyAV: the `h264` attack) as an 8-frame still
clip, of which the middle frame is read (marked and read in the card's `video_domain`, as videos are). Writes
benchmarks/results/small_inputs.json: mean bit accuracy per checkpoint, long side and codec.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import attacks
import wmark
from wmark import pipeline, zoo
from wmark.io.image import from_uint8
from wmark.train.data import image_files

RESULTS = Path(__file__).parent / "results"
LONG_SIDES = (160, 320, 480, 640)
CLIP_FRAMES = 8


def resized(photo: Path, long_side: int) -> Image.Image:
    """``photo`` resized (Lanczos) so its long side is ``long_side``, both sides even (yuv420p needs it)."""
    image = Image.open(photo).convert("RGB")
    scale = long_side / max(image.size)
    size = tuple(max(2, 2 * round(side * scale / 2)) for side in image.size)
    return image.resize(size, Image.LANCZOS)


def _codec(spec: str, clip: bool = False):
    """The attack ``spec`` on one marked image (3, H, W); with ``clip``, on CLIP_FRAMES still copies of it
    as one clip, of which the middle frame is returned."""
    attack = attacks.create(spec)

    def apply(marked: torch.Tensor) -> torch.Tensor:
        x = marked[None, None].expand(1, CLIP_FRAMES, *marked.shape).contiguous() if clip else marked[None]
        y = attack(x, attack.sample(x.shape, torch.Generator().manual_seed(0)))
        return y[0, CLIP_FRAMES // 2] if clip else y[0]

    return apply


CODECS = {"jpeg75": _codec("jpeg:quality=75"), "jpeg75_444": _codec("jpeg:quality=75,subsampling=444"),
          "h264_crf23": _codec("h264:crf=23", clip=True)}
VIDEO_CODECS = {"h264_crf23"}  # marked in the card's video_domain, as videos are


def measure(name: str, photos: list[Path]) -> dict:
    """{long side: {codec: mean bit accuracy over the photos}} for checkpoint ``name``."""
    marker = wmark.load(name, device="cpu")
    rng = np.random.default_rng(0)
    table = {}
    for side in LONG_SIDES:
        scores = {codec: [] for codec in CODECS}
        for photo in photos:
            x = from_uint8(np.asarray(resized(photo, side)))
            codeword = torch.from_numpy(rng.integers(0, 2, marker.bits)).to(torch.uint8)
            marked = {video: pipeline.quantize(marker.embed_tensor(x[None], codeword, video=video))[0]
                      for video in (False, True)}
            for codec, attack in CODECS.items():
                video = codec in VIDEO_CODECS  # marked, and read, as a video's frame
                bits = (marker.frame_logits(attack(marked[video])[None], video=video)[0] > 0).to(torch.uint8)
                scores[codec].append(float((bits == codeword).float().mean()))
        table[str(side)] = {codec: round(float(np.mean(values)), 4) for codec, values in scores.items()}
        print(name, side, table[str(side)], flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", default="../shared/data/val")
    parser.add_argument("-m", "--model", action="append", help="checkpoint (repeatable; default: all committed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    photos = image_files(Path(args.val))
    names = args.model or [card.name for card in zoo.list_cards()]
    path = RESULTS / "small_inputs.json"
    earlier = json.loads(path.read_text()) if path.exists() else {}
    results = earlier["models"] if earlier.get("photos") == len(photos) else {}  # same photo set: keep the others
    results.update({name: measure(name, photos) for name in names})
    path.write_text(json.dumps({"long_sides": LONG_SIDES, "photos": len(photos), "models": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
