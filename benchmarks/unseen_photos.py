"""A set of real photos that no checkpoint saw in training or validation, from the packages ../shared/data came from.

    python benchmarks/unseen_photos.py OUT_DIR

../shared/data took its images from Debian's wallpaper packages, but not all of them. The natural photographs it
left out are fetched here with `apt-get download` (no install) and saved the way that set was made: RGB, long
side at most 2048 px, JPEG quality 95 without chroma subsampling. Six photos of 1.8-2.6 MP: a flat sunset sky
over water (summer_1am), a bird on a trunk before a flat blurred background (Kleiber), grass against the sea
(Dune), a ladybird on blurred flowers (LadyBird), a jetty at dusk (BytheWater) and a forest path (Path).
Each package's copyright file (usr/share/doc/<package>/copyright) names the authors and licences. Point
`benchmarks/thresholds.py --val OUT_DIR` at the folder. Needs apt-get and dpkg-deb (Debian or Ubuntu).
"""
from __future__ import annotations

import argparse
import subprocess
import tarfile
import tempfile
from pathlib import Path

from PIL import Image

LONG_SIDE = 2048
PHOTOS = {  # package: {file in the package: name in OUT_DIR}
    "mate-backgrounds": {"usr/share/backgrounds/mate/nature/Dune.jpg": "Dune",
                         "usr/share/backgrounds/mate/nature/LadyBird.jpg": "LadyBird"},
    "lomiri-wallpapers-20.04": {"usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg": "Kleiber"},
    "plasma-workspace-wallpapers": {f"usr/share/wallpapers/{name}/contents/images/2560x1600.jpg": name
                                    for name in ("BytheWater", "Path", "summer_1am")},
}


def extract(package: str, members: dict[str, str], work: Path, out: Path) -> None:
    subprocess.run(["apt-get", "download", "-q", package], cwd=work, check=True, capture_output=True)
    deb = next(work.glob(f"{package}_*.deb"))
    contents = work / package
    contents.mkdir()
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as pipe:
        with tarfile.open(fileobj=pipe.stdout, mode="r|") as archive:
            archive.extractall(contents, members=(m for m in archive if m.name.removeprefix("./") in members),
                               filter="data")
    for member, name in members.items():
        image = Image.open(contents / member).convert("RGB")
        image.thumbnail((LONG_SIDE, LONG_SIDE), Image.LANCZOS)
        target = out / f"{name}.jpg"
        image.save(target, quality=95, subsampling=0)
        print(f"{target}  {image.width}x{image.height}  ({package})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for package, members in PHOTOS.items():
            extract(package, members, Path(work), args.out)


if __name__ == "__main__":
    main()
