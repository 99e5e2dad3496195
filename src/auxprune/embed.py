"""Sentence embeddings from a saved model: what a bi-encoder (`model.head=bi`) was trained to give.

    auxprune embed runs/stsb_bi sentences.txt --output vectors.npy
    auxprune embed runs/stsb_bi docs.jsonl --field text --output vectors.jsonl

Input: a `.txt` file (one text per line, blank lines skipped) or a `.jsonl` file (one object per
line, the text in `--field`, default "text"). Output by suffix: `.npy` (float32, one row per text,
in input order) or `.jsonl` (`{"text": ..., "embedding": [...]}` per line). Embeddings use the
model's own pooling and are scaled to unit length unless `normalize=False`, so that a dot product
is the cosine similarity the bi-encoder was trained on. A bi-encoder's ONNX export (fp32 or int8)
works too: its graph gives the unit-length embeddings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from auxprune.errors import UserError

OUTPUT_SUFFIXES = (".npy", ".jsonl")


def embed(model, texts: list[str], batch_size: int = 64, normalize: bool = True) -> np.ndarray:
    """One row per text (float32), in the order given; `model` is a run folder, a model folder or a
    (model, tokenizer) pair."""
    from auxprune.baselines import sentence_embeddings
    from auxprune.model.inputs import truncation_length
    from auxprune.predict import _model_and_tokenizer

    model, tokenizer = _model_and_tokenizer(model)
    if not hasattr(model, "encoder"):
        raise UserError("embed: an ONNX export of a cross-encoder gives task outputs, not embeddings; give its model "
                        "folder, or the ONNX export of a bi-encoder (model.head=bi)")
    if not normalize and hasattr(model, "session"):
        raise UserError("embed: an ONNX export gives unit-length embeddings only; for unnormalized ones give the model folder")
    if batch_size < 1:
        raise UserError(f"embed: batch_size must be at least 1, got {batch_size}")
    vectors = sentence_embeddings(model.encoder, tokenizer, texts, truncation_length(model.config), batch_size)
    if normalize:
        vectors = F.normalize(vectors, dim=-1)
    return vectors.to(torch.float32).numpy()


def read_texts(path: Path, field: str = "text") -> list[str]:
    """Texts of a .txt or .jsonl file; one line naming the file and line for anything else."""
    path = Path(path)
    if path.suffix not in (".txt", ".jsonl"):
        raise UserError(f"{path}: unknown input type {path.suffix or '(none)'}; expected .txt (one text per line) or .jsonl")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as err:
        raise UserError(f"{path}: file not found; expected a .txt or .jsonl file of texts") from err
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not valid UTF-8; expected UTF-8 text") from err
    texts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if path.suffix == ".txt":
            texts.append(line.strip())
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not a JSON object ({err.msg}); expected one object per line") from err
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise UserError(f"{path}:{number}: no string field {field!r}; expected {{\"{field}\": \"...\"}} on every line")
        texts.append(record[field])
    if not texts:
        raise UserError(f"{path}: no texts; expected at least one non-empty line")
    return texts


def write_embeddings(path: Path, texts: list[str], vectors: np.ndarray) -> None:
    """Write whole or not at all (a temporary file renamed into place)."""
    from auxprune.output import atomic_write_text

    path = Path(path)
    if path.suffix not in OUTPUT_SUFFIXES:
        raise UserError(f"{path}: unknown type {path.suffix or '(none)'}; expected .npy or .jsonl")
    if not path.parent.is_dir():
        raise UserError(f"{path}: folder {path.parent} does not exist")
    if path.suffix == ".jsonl":
        atomic_write_text(path, "".join(json.dumps({"text": t, "embedding": [round(float(x), 7) for x in v]}) + "\n"
                                        for t, v in zip(texts, vectors)))
        return
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            np.save(handle, vectors, allow_pickle=False)
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write ({err.strerror})") from err
