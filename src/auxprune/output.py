"""What a run leaves behind: the model folder, report.json, structure.png, config.yaml, log.jsonl.

Files are written to a temporary name in the same folder and renamed into place, so a reader
never sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from auxprune.errors import UserError
from auxprune.model.configuration import AuxpruneConfig


def atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuse an output path that cannot become the run's folder, without touching anything."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: output path exists and is not a folder; expected a folder or a new path")
    try:
        not_empty = path.exists() and any(path.iterdir())
    except OSError as err:
        raise UserError(f"{path}: output folder cannot be read ({err.strerror})") from err
    if not_empty and not overwrite:
        raise UserError(f"{path}: output folder exists and is not empty (overwrite=True replaces it)")


def prepare_output_dir(path: Path, overwrite: bool) -> None:
    """Make `path` an empty, writable folder; refuse (changing nothing) when that is not possible."""
    check_output_dir(path, overwrite)
    if path.exists() and any(path.iterdir()):
        shutil.rmtree(path)
    created = missing_folders(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        remove_empty_folders(created)
        raise UserError(f"{path}: output folder is not writable ({err.strerror}); "
                        "expected a folder that can be created and written to") from err


def missing_folders(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def remove_empty_folders(folders: list[Path]) -> None:
    """Undo `mkdir(parents=True)`: remove the folders it created (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def save_model(model, tokenizer, path: Path) -> None:
    """Save into a temporary sibling folder, then rename: the model folder is whole or absent,
    and a model already there is replaced only by a complete one. The folder carries its modeling
    code (`auxprune.remote_code`): it loads with `trust_remote_code=True` where auxprune is not installed."""
    from auxprune.remote_code import add_remote_code

    tmp, old = path.with_name(f".{path.name}.tmp"), path.with_name(f".{path.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        add_remote_code(tmp)
        if getattr(model.config, "head", "cross") == "bi":
            write_sentence_transformers_files(tmp, model.config)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"{path}: cannot write the model ({err.strerror or err}); nothing was written") from err
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


# sentence-transformers' pipeline for a bi-encoder folder: the encoder, its pooling, unit length.
ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


def write_sentence_transformers_files(folder: Path, config: AuxpruneConfig) -> None:
    """The sentence-transformers layout beside the weights, so that
    `SentenceTransformer(folder, trust_remote_code=True)` encodes as the bi-encoder was trained
    (the model's own pooling, then unit length: cosine similarity is a dot product)."""
    if config.pooling == "pooler":
        return  # sentence-transformers' Pooling has no BERT pooler layer: the folder stays a Hugging Face one
    folder = Path(folder)
    pooling = {"word_embedding_dimension": config.hidden_size, "pooling_mode_cls_token": config.pooling == "cls",
               "pooling_mode_mean_tokens": config.pooling == "mean", "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    write_json(folder / "modules.json", ST_MODULES)
    write_json(folder / "1_Pooling" / "config.json", pooling)
    write_json(folder / "sentence_bert_config.json", {"max_seq_length": config.max_seq_len, "do_lower_case": False})
    write_json(folder / "config_sentence_transformers.json", {"similarity_fn_name": "cosine", "model_type": "SentenceTransformer"})


def structure_summary(config: AuxpruneConfig) -> dict:
    return {
        "hidden_kept": config.hidden_size,
        "hidden_total": config.original_hidden_size,
        "layers": [
            {"heads": heads, "ffn_units": units, "attention_kept": heads > 0, "ffn_kept": units > 0}
            for heads, units in zip(config.layer_heads, config.layer_ffn)
        ],
    }


def plot_structure(config: AuxpruneConfig, path: Path, title: str) -> None:
    """Bars of kept heads and FFN units per layer, as fractions of the dense layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = range(1, config.num_hidden_layers + 1)
    heads = [h / config.original_num_heads for h in config.layer_heads]
    units = [f / config.original_ffn_size for f in config.layer_ffn]
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * config.num_hidden_layers + 2), 3.6))
    width = 0.38
    ax.bar([l - width / 2 for l in layers], heads, width, label="attention heads", color="#4c72b0")
    ax.bar([l + width / 2 for l in layers], units, width, label="FFN units", color="#dd8452")
    for l, h, f in zip(layers, config.layer_heads, config.layer_ffn):
        ax.text(l - width / 2, heads[l - 1] + 0.02, str(h), ha="center", fontsize=8)
        ax.text(l + width / 2, units[l - 1] + 0.02, str(f), ha="center", fontsize=8)
    ax.set_xticks(list(layers))
    ax.set_xlabel("layer")
    ax.set_ylabel("kept fraction")
    ax.set_ylim(0, 1.15)
    ax.set_title(f"{title}\nhidden dims kept: {config.hidden_size} / {config.original_hidden_size}", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
