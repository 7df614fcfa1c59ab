#!/usr/bin/env bash
# Bundle, here, what benchmarks/gpu_session.py needs on a bare GPU machine that reaches no network.
#
#   bash benchmarks/gpu_wheels.sh [DATA]       # DATA: a folder with train/ and val/ (../shared/data)
#
# 1. .whl/: the wheels the H200 image lacks (/work/.library/device/KINDS.md), for CPython 3.12 on
#    x86-64, with the device README's pip flags, at the versions this checkout is tested with: av,
#    kornia and kornia_rs, PyWavelets, reedsolo, flip-evaluator. torch, typer, pillow, numpy,
#    safetensors (0.8.0), matplotlib, rich, pytest and setuptools are there already. Each wheel is then
#    re-zipped with LZMA (zipfile.ZIP_LZMA, which pip reads like deflate; the same files and RECORD):
#    av's FFmpeg libraries shrink from 34 to 26 MiB, so that the carry fits the 64 MiB a call takes.
# 2. .gpu_data/: a small copy of DATA: train/ at a long side of 512 px (JPEG 90), val/ at 1024 px
#    (calibrating mbrs-64's strength on val at 1024 px gives 1.5657, at full size 1.5644).
# 3. Prints every size and the total that travels (tracked and untracked-not-ignored files plus the
#    carry); exits 1 when it reaches 64 MiB.
#
# Then, in a session whose device status says can_start_another: true, one `run` with timeout_s 600,
# carry [".whl", ".gpu_data"] and this command (the same as in benchmarks/gpu_session.py), then give_back:
#
# set -o pipefail; python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || ln -sfn ../checkpoints wmark/checkpoints; export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1; python3 benchmarks/gpu_session.py --out $OUT --data .gpu_data/train --val .gpu_data/val 2>&1 | tee $OUT/session.log
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
DATA=${1:-../shared/data}
WHEELS=(av==18.1.0 kornia==0.9.0 kornia_rs==0.2.0 PyWavelets==1.9.0 reedsolo==1.7.0 flip-evaluator==1.7)

rm -rf .whl && mkdir .whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"

"$PYTHON" - <<'EOF'
"""Re-zip each wheel with LZMA, in parallel; print its size before and after and what it requires."""
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def lzma(path: Path) -> str:
    before = path.stat().st_size
    packed = path.with_suffix(".lzma")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(packed, "w", zipfile.ZIP_LZMA) as target:
        metadata = next(n for n in source.namelist() if n.endswith(".dist-info/METADATA"))
        needs = [line.split(":", 1)[1].strip() for line in source.read(metadata).decode().splitlines()
                 if line.startswith("Requires-Dist:") and "extra ==" not in line]
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, info.date_time)  # a fresh entry: writing one moves its offset
            entry.external_attr, entry.compress_type = info.external_attr, zipfile.ZIP_LZMA
            target.writestr(entry, source.read(info))
    packed.replace(path)
    return f"{path.name}: {before / 2**20:.1f} -> {path.stat().st_size / 2**20:.1f} MiB; requires {needs or 'nothing'}"


with ProcessPoolExecutor() as pool:
    for line in pool.map(lzma, sorted(Path(".whl").glob("*.whl"))):
        print(line)
EOF

if [ -d "$DATA/train" ] && [ -d "$DATA/val" ]; then
    "$PYTHON" - "$DATA" <<'EOF'
"""Copy DATA/train and DATA/val into .gpu_data/, downscaled (never upscaled) as JPEG."""
import shutil
import sys
from pathlib import Path

from PIL import Image

data, out = Path(sys.argv[1]), Path(".gpu_data")
shutil.rmtree(out, ignore_errors=True)
for part, side, quality in (("train", 512, 90), ("val", 1024, 92)):
    (out / part).mkdir(parents=True)
    count = 0
    for path in sorted(p for p in (data / part).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")):
        image = Image.open(path).convert("RGB")
        image.thumbnail((side, side), Image.LANCZOS)
        image.save(out / part / f"{path.stem}.jpg", quality=quality)
        count += 1
    print(f".gpu_data/{part}: {count} images, long side {side} px")
EOF
else
    echo "no $DATA/train and $DATA/val: .gpu_data not made (the session's training step will fail)" >&2
fi

"$PYTHON" - <<'EOF'
"""Sizes: each carried folder, and the total that a device call sends."""
import subprocess
import sys
from pathlib import Path

listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                        capture_output=True, check=True).stdout.decode().split("\0")
tree = sum(Path(f).stat().st_size for f in set(listed) if f and Path(f).is_file())
sizes = {"working tree (tracked + untracked, not ignored)": tree}
for folder in (".whl", ".gpu_data"):
    sizes[folder] = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
for path in sorted(Path(".whl").glob("*.whl")):
    print(f"{path.stat().st_size / 2**20:8.2f} MiB  {path}")
for name, size in sizes.items():
    print(f"{size / 2**20:8.2f} MiB  {name}")
total = sum(sizes.values())
print(f"{total / 2**20:8.2f} MiB  travels in all (the limit: 64 MiB)")
sys.exit(0 if total < 64 * 2**20 else 1)
EOF
