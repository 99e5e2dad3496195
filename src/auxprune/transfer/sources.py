"""Auxiliary sources: labelled tasks (GLUE names or data files) and masked-LM text, each with its
own label space, loaders and (where there is one) dev split."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from auxprune.config import AuxSource, RunConfig
from auxprune.data.batching import encode, make_loader
from auxprune.data.tasks import Example, TaskData, TaskSpec, load_task, resolve_data_dir, subsample
from auxprune.errors import UserError

MLM_PROBABILITY = 0.15


@dataclass
class AuxTask:
    """One auxiliary source ready for training: `kind` is classification, regression or mlm."""

    name: str
    kind: str
    num_labels: int
    weight: float
    loader: DataLoader
    train_examples: int
    spec: TaskSpec | None = None  # labelled tasks only
    dev_loader: DataLoader | None = None
    dev_labels: list = field(default_factory=list)
    pairs: bool = False  # pairs encoded apart, for a bi-encoder's pair head
    label_range: list[float] | None = None  # regression: the training labels' [low, high]


def _resolve(task: str, data_dir: str | None) -> str:
    """A file path as given, else relative to the data folder; GLUE names pass through."""
    if Path(task).exists():
        return task
    root = resolve_data_dir(data_dir)
    if root is not None and (root / task).exists():
        return str(root / task)
    return task


def _pairs(examples: list[Example]) -> set[tuple[str, str | None]]:
    return {(e.text_a.strip().lower(), (e.text_b or "").strip().lower()) for e in examples}


def check_leak(source: str, aux: list[Example], target_dev: list[Example]) -> None:
    """Refuse an auxiliary set that contains the target's dev examples: results would be inflated."""
    dev = _pairs(target_dev)
    shared = len(dev & _pairs(aux))
    if dev and shared >= max(1, len(dev) // 2):
        raise UserError(f"transfer.aux {source}: {shared} of the target's {len(dev)} dev examples are in it; "
                        "expected auxiliary data that does not contain the target's dev set")


def read_plain_text(path: Path) -> list[Example]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as err:
        raise UserError(f"transfer.aux mlm:{path}: file not found; expected a plain text file, one text per line") from err
    except UnicodeDecodeError as err:
        raise UserError(f"transfer.aux mlm:{path}: not valid UTF-8; expected UTF-8 text") from err
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise UserError(f"transfer.aux mlm:{path}: no text lines; expected one text per line")
    return [Example(text, None, 0) for text in texts]


def mask_tokens(batch: dict[str, torch.Tensor], tokenizer, generator: torch.Generator,
                probability: float = MLM_PROBABILITY) -> dict[str, torch.Tensor]:
    """BERT's recipe: pick 15% of real tokens; 80% become [MASK], 10% a random token, 10% stay.
    Labels are -100 except at picked positions."""
    ids = batch["input_ids"].clone()
    special = torch.tensor(tokenizer.all_special_ids)
    candidates = (batch["attention_mask"] == 1) & ~torch.isin(ids, special)
    picked = (torch.rand(ids.shape, generator=generator) < probability) & candidates
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    draw = torch.rand(ids.shape, generator=generator)
    ids[picked & (draw < 0.8)] = tokenizer.mask_token_id
    swap = picked & (draw >= 0.8) & (draw < 0.9)
    ids[swap] = torch.randint(len(tokenizer), ids.shape, generator=generator)[swap]
    return {**batch, "input_ids": ids, "labels": labels}


def load_aux_tasks(config: RunConfig, target: TaskData, target_train: list[Example], tokenizer,
                   separate: bool = False) -> list[AuxTask]:
    """Every configured auxiliary source, read, limited, encoded and batched; with `separate` (a
    bi-encoder), the two sides of a pair task are encoded apart, as the target's are."""
    batch_size = config.transfer.aux_batch_size or config.train.batch_size
    pad = tokenizer.pad_token_id or 0
    tasks = []
    for index, source in enumerate(config.transfer.aux):
        seed = config.seed * 1000 + index  # each source its own reproducible order
        if source.task == "mlm" or source.task.startswith("mlm:"):
            tasks.append(_mlm_task(source, config, target_train, tokenizer, batch_size, pad, seed))
        else:
            tasks.append(_labelled_task(source, config, target, tokenizer, batch_size, pad, seed, separate))
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise UserError(f"transfer.aux: the same source is given twice ({', '.join(names)}); give each once with its weight")
    return tasks


def _labelled_task(source: AuxSource, config: RunConfig, target: TaskData, tokenizer, batch_size: int, pad: int,
                   seed: int, separate: bool = False) -> AuxTask:
    path = _resolve(source.task, config.data.data_dir)
    if path == config.data.task or Path(path).resolve() == _maybe_resolved(config.data.task):
        raise UserError(f"transfer.aux {source.task}: is the target task itself; expected a different task")
    data = load_task(path, config.data.data_dir, text_columns=source.text_columns, label_column=source.label_column,
                     label_map=source.label_map, kind=source.kind)
    check_leak(source.task, data.train + data.dev, target.dev)
    stratify = data.spec.kind == "classification"
    train = subsample(data.train, source.max_examples, seed, stratify)
    dev = subsample(data.dev, 1000, 0, stratify)
    max_len = config.model.max_seq_len
    pairs = separate and train[0].text_b is not None
    loader = make_loader(encode(train, tokenizer, max_len, pairs), batch_size, pad, shuffle=True, seed=seed)
    dev_loader = make_loader(encode(dev, tokenizer, max_len, pairs), config.train.eval_batch_size, pad, shuffle=False)
    labels = [float(e.label) for e in train] if data.spec.kind == "regression" else None
    return AuxTask(Path(source.task).stem if "/" in source.task and Path(path).is_file() else source.task,
                   data.spec.kind, data.spec.num_labels, source.weight, loader, len(train), data.spec, dev_loader,
                   [e.label for e in dev], pairs, [min(labels), max(labels)] if labels else None)


def _maybe_resolved(task: str) -> Path | None:
    return Path(task).resolve() if Path(task).exists() else None


def _mlm_task(source: AuxSource, config: RunConfig, target_train: list[Example], tokenizer, batch_size: int, pad: int,
              seed: int) -> AuxTask:
    if tokenizer.mask_token_id is None:
        raise UserError(f"transfer.aux {source.task}: the tokenizer has no mask token; masked-LM needs one")
    if source.task == "mlm":
        # The target's own training text, each side of a pair as its own text.
        examples = [Example(t, None, 0) for e in target_train for t in (e.text_a, e.text_b) if t]
        name = "mlm:target"
    else:
        path = Path(_resolve(source.task[4:], config.data.data_dir))
        examples, name = read_plain_text(path), f"mlm:{path.name}"
    examples = subsample(examples, source.max_examples, seed, stratify=False)
    loader = make_loader(encode(examples, tokenizer, config.model.max_seq_len), batch_size, pad, shuffle=True, seed=seed)
    return AuxTask(name, "mlm", 0, source.weight, loader, len(examples))
