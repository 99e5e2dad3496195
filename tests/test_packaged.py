"""Packaged models: a zip split over several packages is unpacked once, checked, and never half-used."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from auxprune.errors import UserError
from auxprune.model.packaged import ConcatenatedReader, SplitZip, packaged_path, unpacked

WEIGHTS = bytes(range(256)) * 400


def split_zip(tmp_path, pieces: int = 3) -> list:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tiny/config.json", '{"model_type": "bert"}')
        archive.writestr("tiny/model.safetensors", WEIGHTS)
        archive.writestr("tiny/desktop.ini", "junk")
        archive.writestr("other/readme.txt", "not part of the model")
    data = buffer.getvalue()
    cut = [len(data) * i // pieces for i in range(pieces + 1)]
    paths = []
    for i in range(pieces):
        path = tmp_path / f"tiny.zip.{i + 1:03d}"
        path.write_bytes(data[cut[i]:cut[i + 1]])
        paths.append(path)
    return paths


def model(sha: str | None = None) -> SplitZip:
    return SplitZip(name="tiny", folder="tiny", packages=("no-such-package-part-001",), piece="x/{i}",
                    weights_sha256=sha or hashlib.sha256(WEIGHTS).hexdigest(), install_hint="install it with: X")


def test_concatenated_pieces_read_and_seek_as_one_file(tmp_path):
    paths = split_zip(tmp_path, pieces=4)
    whole = b"".join(p.read_bytes() for p in paths)
    with ConcatenatedReader(paths) as stream:
        assert stream.read() == whole
        stream.seek(-10, io.SEEK_END)
        assert stream.read() == whole[-10:]
        stream.seek(len(paths[0].read_bytes()) - 3)
        assert stream.read(7) == whole[len(paths[0].read_bytes()) - 3:][:7]  # across a piece boundary


def test_split_model_unpacks_once_and_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("AUXPRUNE_CACHE", str(tmp_path / "cache"))
    folder = unpacked(model(), split_zip(tmp_path))
    assert folder == tmp_path / "cache" / "tiny"
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert sorted(p.name for p in folder.iterdir()) == [".verified", "config.json", "model.safetensors"]
    # Verified before: the packages are not read again (these are not even installed).
    assert unpacked(model()) == folder


def test_damaged_pieces_are_refused_and_leave_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("AUXPRUNE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="SHA-256 .* expected .* damaged, reinstall them \\(install it with: X\\)"):
        unpacked(model(sha="0" * 64), split_zip(tmp_path))
    assert not (tmp_path / "cache" / "tiny").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # no scratch folder left either
    pieces = split_zip(tmp_path)
    pieces[1].write_bytes(pieces[1].read_bytes()[:-5])  # a truncated piece: the zip no longer reads
    with pytest.raises(UserError, match="model 'tiny'"):
        unpacked(model(), pieces)
    with pytest.raises(UserError, match="do not form a readable zip"):
        unpacked(model(), pieces[:1])  # the central directory is in the last piece
    assert not (tmp_path / "cache" / "tiny").exists()


def test_missing_packages_say_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("AUXPRUNE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="no-such-package-part-001 is not installed; install it with: X"):
        unpacked(model())
    assert packaged_path("some/folder") is None


def _mpnet_unpacked() -> bool:
    from auxprune.model.packaged import MPNET_BASE, cache_dir

    marker = cache_dir() / MPNET_BASE.folder / ".verified"
    return marker.is_file() and marker.read_text().strip() == MPNET_BASE.weights_sha256


@pytest.mark.skipif(not _mpnet_unpacked(), reason="all-mpnet-base-v2 is not unpacked in $AUXPRUNE_CACHE "
                    "(bash scripts/setup.sh --models mpnet); the tiny MPNet tests cover the adapter")
def test_real_mpnet_base_matches_transformers():
    """The real all-mpnet-base-v2 (a slow check, run where it is installed): same hidden states as MPNetModel."""
    import torch
    from transformers import MPNetModel

    from auxprune.model.loading import load_pretrained, resolve_model_path

    model, tokenizer, pooling = load_pretrained("mpnet-base", num_labels=2)
    assert pooling.mode == "mean" and model.config.num_hidden_layers == 12
    reference = MPNetModel.from_pretrained(str(resolve_model_path("mpnet-base"))).eval()
    batch = tokenizer(["A man is playing a guitar.", "Pruning makes large encoders fast enough to deploy.", "short"],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        _, states = model.eval().auxprune.encode(batch["input_ids"], batch["attention_mask"])
        expected = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    kept = batch["attention_mask"].bool()
    assert (states[-1][kept] - expected[kept]).abs().max() < 1e-5
