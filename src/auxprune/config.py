"""One typed configuration tree: presets, YAML files and `--set key=value` overrides all land here.

Validation errors become one line naming the field, e.g.
`config: prune.target_sparsity: Input should be less than 1 (got 1.5)`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auxprune.errors import UserError
from auxprune.structure import FAMILIES


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(Section):
    name: str = Field("minilm", description="HF model folder (BERT, RoBERTa or MPNet), 'minilm' (packaged "
                      "all-MiniLM-L6-v2) or 'mpnet-base' (packaged all-mpnet-base-v2)")
    pooling: Literal["auto", "mean", "cls", "pooler"] = "auto"
    max_seq_len: int = Field(128, ge=8, le=4096)
    head: Literal["auto", "cross", "bi"] = Field("auto", description="sentence pairs: cross (one joint sequence) or bi "
                                                 "(each side encoded alone, compared by cosine, as sentence-transformers); "
                                                 "auto: bi for a sentence-embedding model on a pair task, else cross "
                                                 "(measured: pipeline.AUTO_PAIR_HEAD)")
    pair_classifier: Literal["auto", "cosine", "concat"] = Field(
        "auto", description="bi-encoder classes from the cosine (two classes) or from [u, v, |u-v|]; auto: cosine for two classes")


class DataSection(Section):
    task: str = Field("glue/rte", description="named GLUE task (glue/rte, glue/mrpc, glue/stsb, glue/cola, glue/sst2) or a data file")
    data_dir: str | None = None
    train_file: str | None = None
    dev_file: str | None = None
    text_columns: list[str] | None = None
    label_column: str | None = None
    label_map: dict[str, str] | None = None
    kind: Literal["classification", "regression"] | None = None
    max_train_examples: int | None = Field(None, ge=1)
    max_dev_examples: int | None = Field(None, ge=1)


class TeacherSection(Section):
    path: str | None = Field(None, description="a fine-tuned teacher folder; fine-tuned first when empty")
    epochs: float = Field(4.0, gt=0)
    lr: float = Field(1e-4, gt=0)


class PruneSection(Section):
    target_sparsity: float = Field(0.6, ge=0.0, lt=1.0)
    # A size instead of a sparsity: when one is set, the run computes target_sparsity from it and
    # the model's encoder parameter count (pipeline.size_target), the count the report uses.
    target_params: int | None = Field(None, ge=1, description="prune to this many encoder-layer parameters")
    size_of: str | None = Field(None, description="prune to the encoder-layer parameter count of this model: "
                                "'minilm', a Hugging Face folder, or an auxprune run or model folder")
    speed_reference: str | None = Field(None, description="time the pruned model beside this model (its architecture "
                                        "with random weights, on a training batch; `speed.reference` in the report): "
                                        "'minilm', a Hugging Face folder, or an auxprune run or model folder; "
                                        "prune.size_of's model when empty. A sentence-embedding model is also scored "
                                        "as it is on a pair task's dev set (`reference_score`)")
    # Heads and FFN units only by default: on short CPU schedules, gating whole blocks and hidden
    # dimensions too cost far more accuracy (bench notes in README); `full` uses all five, as CoFi.
    families: list[str] = Field(default_factory=lambda: ["heads", "ffn_units"])
    # 12, not 6: twice the pruning steps lifted the pruned bi-encoder on STS-B (+3.6 at 0.9, +1.0 at 0.6, seeds 1-3),
    # MRPC 0.9 (+0.5) and MPNet-base (+0.8), and was level within noise on MRPC 0.6 (-0.6, seeds 1-2):
    # bench/results/bi_recipe.json. Older tables keep 6 (bench/prune_cell.py).
    epochs: float = Field(12.0, gt=0)
    sparsity_warmup: float = Field(0.5, gt=0, le=1, description="fraction of pruning steps over which the target ramps up")
    lr: float = Field(1e-4, gt=0)
    gate_lr: float = Field(0.1, gt=0)
    lambda2_lr: float = Field(5.0, gt=0, description="ascent rate of lambda2, the quadratic multiplier")
    lambda1_lr: float = Field(0.5, gt=0, description="ascent rate of lambda1, the linear multiplier")
    init_keep_prob: float = Field(0.99, gt=0, lt=1)
    tolerance: float = Field(0.005, gt=0, le=0.05, description="allowed |measured - target| sparsity")
    align: int = Field(1, ge=1, le=256, description="kept FFN units (and hidden dims) rounded to multiples of this")
    # True: a layer whose heads (or FFN units) all draw zero is trained without that sublayer, as the cut model
    # has none. False: its LayerNorm still runs over the residual plus the output bias (CoFi's formulation, and
    # auxprune's until December 2026), so the cut changes the model pruning fit. bench/results/empty_sublayers.json.
    skip_empty_sublayers: bool = True

    @model_validator(mode="after")
    def _one_size(self) -> "PruneSection":
        if self.target_params is not None and self.size_of is not None:
            raise ValueError("give target_params or size_of, not both")
        return self

    @field_validator("families")
    @classmethod
    def _known_families(cls, families: list[str]) -> list[str]:
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown families {unknown}; choose from {list(FAMILIES)}")
        if not families:
            raise ValueError("select at least one family")
        return families


class DistillSection(Section):
    enabled: bool = True
    temperature: float = Field(2.0, gt=0)
    prediction_weight: float = Field(1.0, ge=0)
    layer_weight: float = Field(1.0, ge=0)
    task_weight: float = Field(0.5, ge=0, description="weight of the plain task loss next to distillation")
    embedding_weight: float = Field(1.0, ge=0, description="bi-encoders: weight of the sentence embeddings' distance "
                                    "(1 - cosine) to the teacher's")
    teacher_layers: list[int] | None = Field(None, description="1-based teacher layers to match; evenly spaced when empty")
    teacher_cache_mb: int = Field(2048, ge=0, description="the teacher's outputs on the training set are computed once "
                                  "and kept in memory when they fit in this many MB (the states of the matched layers "
                                  "are most of it); otherwise, or with 0, the teacher runs in every step")


class FinetuneSection(Section):
    epochs: float = Field(3.0, ge=0)
    lr: float = Field(1e-4, gt=0)


class TrainSection(Section):
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    # Epochs were shaped on 1,000 examples; counted on a smaller set they would give a few dozen
    # steps and an untrained teacher. Larger sets are unaffected (bench/results/learning_curve.json).
    min_epoch_examples: int = Field(1000, ge=0, description="an epoch of every target phase counts at least this many "
                                    "examples: a smaller training set is gone over several times per epoch, so the "
                                    "number of optimizer steps does not shrink with the data (0: plain epochs)")
    max_grad_norm: float = Field(1.0, gt=0)
    log_every: int = Field(10, ge=1)
    threads: int | None = Field(None, ge=1, description="CPU threads for torch; all cores when empty")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "fp32", description="fp32, or bf16/fp16 mixed precision (matrix products in 16 bits; weights, gates, losses "
                            "fp32); auto: bf16 where the CPU or GPU multiplies bf16 in hardware, else fp32")
    checkpoint_every: int = Field(50, ge=0, description="save a resumable checkpoint every N training steps (0: only at phase ends)")
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept; older ones are deleted")


class AuxSource(Section):
    task: str = Field(description="GLUE name, a labelled data file (e.g. aux/snli_dev.tsv, looked up in data_dir too), "
                                  "'mlm' (masked LM on the target's training text) or 'mlm:FILE' (plain text, one per line)")
    weight: float = Field(1.0, gt=0, description="mixing weight among the auxiliary sources")
    max_examples: int | None = Field(20000, ge=1)
    text_columns: list[str] | None = None
    label_column: str | None = None
    label_map: dict[str, str] | None = None
    kind: Literal["classification", "regression"] | None = None


RECIPE_AUX_DISTILL_WEIGHT = 3.0  # the --aux recipe's weight of distillation on auxiliary inputs (see TransferSection)


class TransferSection(Section):
    """How, what and when auxiliary tasks transfer to the target (see auxprune.transfer)."""

    aux: list[AuxSource] = Field(default_factory=list)
    # None: `joint` when auxiliary tasks are given, else `none`. The defaults of how, when,
    # teacher_aux_epochs, aux_distill_weight and aux_distill_phases form the recipe measured best on RTE, MRPC and STS-B
    # (README, "Transfer from auxiliary tasks"; bench/results/transfer_limited_data.json). aux_distill_weight was 1
    # there; 3 since 2026-12-06, ahead of 1 on the mean of 8 of the 9 task and size groups measured with the default
    # head (RTE, MRPC, STS-B at 100, 300 and 1,000 examples; behind on RTE at 1,000, one seed; README "The learning
    # curve", small_data_coupling.json).
    how: Literal["none", "sequential", "joint"] | None = None
    # None: the natural choice for `how` (sequential fine-tuning moves weights; otherwise both)
    what: Literal["weights", "masks", "both"] | None = None
    share: Literal["hard", "tied"] = "hard"
    tie_strength: float = Field(1.0, ge=0, description="penalty pulling tied copies together (sequential: "
                                "stage 2 towards what stage 1 ended with)")
    # A constant weight lets the auxiliary loss take over at high sparsity (RTE: below the majority class).
    when: Literal["constant", "linear_decay", "cosine", "window"] = "linear_decay"
    window: tuple[float, float] = (0.0, 0.5)
    weight: float = Field(1.0, ge=0, description="auxiliary loss weight w at its peak")
    phases: list[Literal["teacher", "warmup", "prune", "finetune"]] = Field(default_factory=lambda: ["warmup", "prune"])
    stage1: Literal["finetune", "prune"] = Field("finetune", description="sequential: what stage 1 does on the auxiliary data")
    stage1_epochs: float = Field(1.0, gt=0)
    stage1_lr: float = Field(5e-5, gt=0)
    teacher_aux_epochs: float | None = Field(None, ge=0, description="train the teacher on the auxiliary data first "
                                             "(intermediate task); empty: 1 with how=joint and no teacher.path, else 0")
    stage1_from: str | None = Field(None, description="start from the stage 1 another run trained (its folder, with its "
                                    "stage1/) instead of training it again: the same model, auxiliary data, seed and "
                                    "stage-1 settings, any target")
    aux_batch_size: int | None = Field(None, ge=1, description="auxiliary batch size (default: train.batch_size)")
    aux_distill_weight: float | None = Field(
        None, ge=0, description="how=joint: weight of distilling the teacher on auxiliary inputs (its target "
        "predictions and matched layers; their labels unused) at every step of aux_distill_phases; empty: "
        f"{RECIPE_AUX_DISTILL_WEIGHT:g} with how=joint and distillation on, else 0")
    aux_distill_phases: list[Literal["warmup", "prune", "finetune"]] = Field(
        default_factory=lambda: ["warmup", "prune", "finetune"], min_length=1,
        description="the phases in which aux_distill_weight acts (finetune: prediction distillation only, the pruned "
                    "model has no gates or layer map)")

    @model_validator(mode="after")
    def _coherent(self) -> "TransferSection":
        if self.how is None:
            object.__setattr__(self, "how", "joint" if self.aux else "none")
        if self.what is None:
            object.__setattr__(self, "what", "weights" if self.how == "sequential" and self.stage1 == "finetune" else "both")
        if self.how == "none" and self.aux and not self.teacher_aux_epochs:
            raise ValueError("auxiliary tasks given but how is 'none'; choose how: sequential or joint")
        if self.how != "none" and not self.aux:
            raise ValueError(f"how={self.how!r} needs at least one auxiliary task (transfer.aux)")
        if self.teacher_aux_epochs and not self.aux:
            raise ValueError("teacher_aux_epochs needs at least one auxiliary task (transfer.aux)")
        start, end = self.window
        if not 0 <= start < end <= 1:
            raise ValueError(f"window must satisfy 0 <= start < end <= 1 (got {list(self.window)})")
        if self.how == "sequential" and self.stage1 == "finetune" and self.what != "weights":
            raise ValueError(f"sequential with stage1=finetune transfers weights only (what={self.what!r} needs stage1=prune)")
        if self.aux_distill_weight and self.how != "joint":
            raise ValueError("aux_distill_weight draws auxiliary inputs during pruning: it needs how=joint")
        if self.how != "none" and self.share == "tied" and self.tie_strength == 0:
            raise ValueError("share=tied needs tie_strength > 0")
        return self


class RunConfig(Section):
    seed: int = 1
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    teacher: TeacherSection = Field(default_factory=TeacherSection)
    prune: PruneSection = Field(default_factory=PruneSection)
    distill: DistillSection = Field(default_factory=DistillSection)
    finetune: FinetuneSection = Field(default_factory=FinetuneSection)
    train: TrainSection = Field(default_factory=TrainSection)
    transfer: TransferSection = Field(default_factory=TransferSection)

    @model_validator(mode="after")
    def _resolve_transfer_defaults(self) -> "RunConfig":
        """Fill the transfer defaults that depend on other sections. A given teacher is used as it is, so
        it gets no intermediate-task training; distillation on auxiliary inputs needs distillation."""
        t = self.transfer
        if t.teacher_aux_epochs is None:
            object.__setattr__(t, "teacher_aux_epochs", 1.0 if t.how == "joint" and self.teacher.path is None else 0.0)
        if t.aux_distill_weight is None:
            object.__setattr__(t, "aux_distill_weight",
                               RECIPE_AUX_DISTILL_WEIGHT if t.how == "joint" and self.distill.enabled else 0.0)
        if t.stage1_from and not (t.how == "sequential" or t.teacher_aux_epochs > 0):
            raise ValueError("stage1_from replaces the training on the auxiliary tasks before the teacher, which this "
                             "run does not have: it needs transfer.aux without teacher.path (or how=sequential)")
        return self


# Presets are overrides on the defaults. `quick` is the README's main job on 2 CPU cores;
# `full` follows CoFi's long schedule for a GPU.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"data": {"max_train_examples": 1000}},
    "full": {
        "teacher": {"epochs": 10, "lr": 2e-5},
        "prune": {"families": list(FAMILIES), "epochs": 100, "sparsity_warmup": 0.2, "lr": 2e-5, "gate_lr": 0.01, "lambda2_lr": 0.01,
                  "lambda1_lr": 0.01},
        "finetune": {"epochs": 20, "lr": 3e-5},
    },
}


# Fields renamed in issue 17 (section, old name) -> new name. Old config files and `--set` with
# the old names still work: each layer is renamed before layers merge, so a later layer wins
# whichever name either uses.
RENAMED = {("prune", "lambda_lr"): "lambda2_lr", ("transfer", "aux_distill"): "aux_distill_weight"}


def with_current_names(layer: dict) -> dict:
    """`layer` (config sections) with renamed fields under their current names."""
    if not isinstance(layer, dict):
        return layer
    updated = dict(layer)
    for (section, old), new in RENAMED.items():
        fields = updated.get(section)
        if isinstance(fields, dict) and old in fields:
            fields = dict(fields)
            value = fields.pop(old)
            fields.setdefault(new, value)  # both in one layer: the current name holds
            updated[section] = fields
    return updated


def deep_merge(base: dict, update: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        elif isinstance(value, dict) and isinstance(merged.get(key), list) and all(str(k).isdigit() for k in value):
            # `--set transfer.aux.0.weight=2`: index into a list given earlier
            items = merged[key]
            for index, item in value.items():
                i = int(index)
                if i >= len(items):
                    raise UserError(f"--set {key}.{index}: there are only {len(items)} items")
                items[i] = deep_merge(items[i], item) if isinstance(item, dict) and isinstance(items[i], dict) else item
        else:
            merged[key] = value
    return merged


def parse_assignment(text: str) -> dict:
    """`prune.epochs=5` -> {"prune": {"epochs": 5}}; the value is read as YAML (numbers, lists, null)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {text!r}: expected key=value, e.g. prune.epochs=5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise UserError(f"--set {text!r}: value is not valid YAML ({err.__class__.__name__})") from err
    nested: dict = value
    for part in reversed(key.strip().split(".")):
        nested = {part: nested}
    return nested


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise UserError(f"{path}: config file not found") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise UserError(f"{path}: not a readable YAML file ({err.__class__.__name__})") from err
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: expected a mapping of config sections at the top level")
    return loaded


TARGETS = {"target_sparsity": "--sparsity", "target_params": "--target-params", "size_of": "--size-of"}


def check_one_target(overrides: list[dict]) -> None:
    """At most one of prune.target_sparsity, prune.target_params and prune.size_of among explicit overrides
    (flags, --set, settings). A saved config.yaml may hold a size and the sparsity computed from it."""
    given = [name for name in TARGETS if any(name in (o.get("prune") or {}) for o in overrides if isinstance(o, dict))]
    if len(given) > 1:
        raise UserError(f"{' and '.join(f'{TARGETS[n]} (prune.{n})' for n in given)} given together; "
                        f"expected one of {', '.join(TARGETS.values())}")


def build_config(preset: str | None = "quick", file: str | Path | None = None,
                 overrides: list[dict] | None = None) -> RunConfig:
    """Defaults <- preset <- config file <- overrides (CLI flags and --set), later wins."""
    check_one_target(overrides or [])
    merged: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"preset {preset!r}: unknown preset; choose from {sorted(PRESETS)}")
        merged = deep_merge(merged, PRESETS[preset])
    if file is not None:
        merged = deep_merge(merged, with_current_names(read_yaml(file)))
    for override in overrides or []:
        merged = deep_merge(merged, with_current_names(override))
    return validate(merged)


def validate(data: dict) -> RunConfig:
    try:
        return RunConfig.model_validate(with_current_names(data))
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "config"
        got = f" (got {first['input']!r})" if "input" in first and not isinstance(first["input"], dict) else ""
        more = f" [+{err.error_count() - 1} more]" if err.error_count() > 1 else ""
        raise UserError(f"config: {field}: {first['msg']}{got}{more}") from err


def to_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
