"""The attack list without torch: `attacks/catalogue.json`, filtered to this PyAV build's codecs.

`wmark attacks` reads it, so listing attacks starts in a fraction of a second. The file is
generated from the registry (`python -m attacks.catalogue`), and a test keeps it equal to
`attacks.spec.catalogue()` and its filtered list equal to `attacks.describe()`.
"""
from __future__ import annotations

import json
from pathlib import Path

import av

FILE = Path(__file__).with_name("catalogue.json")


def has_codec(name: str, mode: str) -> bool:
    """Whether this PyAV build has codec `name` for mode "w" (encode) or "r" (decode)."""
    try:
        av.codec.Codec(name, mode)
    except ValueError:  # av.codec.codec.UnknownCodecError
        return False
    return True


def available(path: Path = FILE) -> list[dict]:
    """The attacks this installation can run, as `attacks.describe()` lists them."""
    listed, seen = [], set()
    for entry in json.loads(path.read_text())["attacks"]:
        needs = entry.pop("requires", None)
        if entry["name"] in seen or (needs and not (has_codec(needs["encoder"], "w")
                                                    and has_codec(needs["decoder"], "r"))):
            continue
        seen.add(entry["name"])
        listed.append(entry)
    return listed


def write(path: Path = FILE) -> None:
    """Regenerate the file from the registry (imports torch)."""
    from .spec import catalogue

    path.write_text(json.dumps({"attacks": catalogue()}, indent=1) + "\n")


if __name__ == "__main__":
    write()
