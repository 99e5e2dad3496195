"""Checks that tell a user when a run's inputs or results cannot be trusted, in one line each.

A run on too little data, or whose teacher learned next to nothing, still ends with a model and a
table of numbers; these lines say what is wrong and what to try instead.
"""

from __future__ import annotations

from collections import Counter

from auxprune.data.tasks import Example, TaskSpec
from auxprune.errors import UserError

MIN_TRAIN_EXAMPLES = 10  # fewer cannot fit a head at all: refused
FEW_TRAIN_EXAMPLES = 50  # fewer: trained, with a warning
FEW_PER_CLASS = 5  # a class seen fewer times than this cannot be learned reliably
# "Barely above" the constant predictor: within this much of it on the primary metric
# (1 accuracy point, or a correlation of 0.02 where the constant scores 0).
BARELY_ABOVE = 0.01


def more_data_remedy(train_sizes: tuple[int, int] | None) -> str:
    """"More data", said so that it can be acted on: the examples a capped run left unused, or, when it used the
    whole training set, labelling more. `train_sizes`: (examples trained on, examples the training set holds)."""
    if train_sizes is None:
        return "more data"
    used, available = train_sizes
    if used < available:
        return f"more of the training set (this run used {used:,} of {available:,}: data.max_train_examples)"
    return f"more labelled data (this run used the whole training set, {available:,} examples)"


def check_training_set(train: list[Example], spec: TaskSpec, source: str, available: int | None = None) -> list[str]:
    """Refuse a training set too small to train on; return warnings for one that is merely small. `available`: the
    training set's size before data.max_train_examples cut it (None: not cut, or unknown)."""
    sizes = None if available is None else (len(train), available)
    if len(train) < MIN_TRAIN_EXAMPLES:
        capped = (f" (data.max_train_examples={len(train)} of {available:,})"
                  if available is not None and available > len(train) else "")
        raise UserError(f"{source}: {len(train)} training examples{capped}; at least {MIN_TRAIN_EXAMPLES} are needed "
                        f"({FEW_TRAIN_EXAMPLES}+ recommended)")
    warnings = []
    if len(train) < FEW_TRAIN_EXAMPLES:
        warnings.append(f"only {len(train)} training examples: expect a weak model; add an auxiliary task (transfer.aux) "
                        f"or {more_data_remedy(sizes)}")
    if spec.kind == "classification":
        counts = Counter(int(e.label) for e in train)
        missing = [spec.labels[i] for i in range(spec.num_labels) if counts[i] == 0]
        if missing:
            raise UserError(f"{source}: no training example of class {', '.join(map(repr, missing))}; "
                            "every class needs examples")
        rare = {spec.labels[i]: counts[i] for i in range(spec.num_labels) if counts[i] < FEW_PER_CLASS}
        if rare:
            listed = ", ".join(f"{label!r} ({n})" for label, n in rare.items())
            warnings.append(f"few training examples of class {listed}: that class will be poorly learned")
    return warnings


# A teacher below the untrained model has moved too far from where it started: sentence-transformers fine-tunes at
# this rate, and with it the bi-encoder teachers on RTE rose 0.7-4.0 points at 100-1,000 examples and MRPC's 5.4 at
# 100 (against the quick preset's 1e-4; bench/results/teacher_lr.json).
LOW_TEACHER_LR = 2e-5
# A pruned bi-encoder whose sentences' spread (1 - their mean cosine) is below this share of its teacher's has
# (nearly) collapsed: 0.00 and 0.29 in the two degenerate MPNet-base runs, 0.48-0.99 in the other seven
# (bench/results/embedding_spread.json), 0.88-0.97 in MiniLM-L6 runs at 0.9 (bench/results/empty_sublayers.json).
COLLAPSED_SPREAD_SHARE = 1 / 3


def check_spread(spread: dict | None, with_aux: bool = False, families: tuple[str, ...] = ()) -> list[str]:
    """A warning when the pruned bi-encoder maps different sentences to (nearly) one embedding
    (`baselines.embedding_spread` of the pruned model and its teacher). `with_aux`, `families`: the run's, so
    that the remedies are ones it has not tried (with --aux, the hidden-family MPNet runs kept their spread)."""
    if not spread or "pruned_mean_cosine" not in spread or "teacher_mean_cosine" not in spread:
        return []
    pruned, teacher = spread["pruned_mean_cosine"], spread["teacher_mean_cosine"]
    if 1 - pruned >= COLLAPSED_SPREAD_SHARE * (1 - teacher):
        return []
    remedies = ([] if with_aux else ["an auxiliary task (transfer.aux)"]) + (
        ["fewer gate families (prune.families=[heads,ffn_units])"] if set(families) - {"heads", "ffn_units"} else [])
    return [f"the pruned bi-encoder maps different sentences to nearly the same embedding (mean cosine {pruned:.3f} "
            f"between {spread['sentences']} dev sentences; its teacher's {teacher:.3f}): its scores rest on tiny "
            f"differences and will not hold on other data; try {', '.join(remedies) + ' or ' if remedies else ''}"
            f"a lower sparsity"]


# Five timed calls on one training batch move by several percent between runs: only a clear loss is worth a line.
SLOWER_THAN_REFERENCE = 1.2


def check_reference_speed(speed: dict | None, families: tuple[str, ...] = ()) -> list[str]:
    """A warning when the pruned model runs clearly slower than the model it was timed beside (`speed.reference`:
    prune.speed_reference, else prune.size_of's): sized like it is not as fast as it, and its speed is usually
    why the size (or the comparison) was asked for. `families`: the run's, so that the remedy is one it has not tried."""
    reference = (speed or {}).get("reference")
    if not reference or reference["pruned_latency_ms"] <= SLOWER_THAN_REFERENCE * reference["latency_ms"]:
        return []
    remedies = ([] if "hidden" in families else ["narrowing the hidden size too (prune.families=[heads,ffn_units,hidden])"]
                ) + ["a smaller target (prune.target_params=...)"]
    why = ("pruned to its encoder size, it is not as fast (its width and heads cost time the parameter count does not "
           "show)" if reference.get("sized_to", True) else "it is slower than the model it was timed beside "
           "(prune.speed_reference)")
    return [f"the pruned model takes {reference['pruned_latency_ms']:g} ms on a training batch ({speed['batch_size']} x "
            f"{speed['seq_len']}), {reference['model']} {reference['latency_ms']:g} ms: {why}; to be as fast, try "
            f"{' or '.join(remedies)}, and time deployment shapes with `auxprune bench`"]


def check_reference_score(primary: str, pruned: dict, reference: dict | None, sized_to: bool = False) -> list[str]:
    """A warning when the pruned model scores below the model it was set beside (prune.size_of or
    prune.speed_reference) used as it is, as a sentence encoder (`reference_as_is_score`): a model of the size
    asked for that needs no pruning (measured: MPNet-base pruned to MiniLM-L6's size below MiniLM-L6 untrained on
    MRPC and RTE, bench/results/size_matched.json)."""
    if reference is None or reference["metrics"].get(primary) is None or pruned[primary] >= reference["metrics"][primary]:
        return []
    which = "whose encoder size it was pruned to" if sized_to else "it was timed beside (prune.speed_reference)"
    return [f"the pruned model's dev {primary} {pruned[primary]:.4f} is below that of {reference['model']}, the model "
            f"{which}, used as it is as a sentence encoder ({reference['metrics'][primary]:.4f}, cosine similarity, "
            f"no training): for this task that model is the better choice at this size; a larger target "
            f"(prune.target_params=...) may pass it"]


def check_results(primary: str, teacher: dict, pruned: dict, constant: dict, untrained: dict | None,
                  head: str = "cross", with_aux: bool = False, teacher_lr: float | None = None,
                  train_sizes: tuple[int, int] | None = None) -> list[str]:
    """Warnings about the dense teacher and the pruned model against the two no-training bars. `with_aux`: the
    run already used auxiliary tasks, so adding one is no remedy; other ones (or none) may be, since training the
    teacher on them first can lower it (measured: RTE with NLI data and a bi-encoder, bench/results/learning_curve.json).
    `teacher_lr`: the rate this run trained its teacher at (None when it loaded one); above LOW_TEACHER_LR, a teacher
    below the untrained model is pointed to the lower rate (bench/results/teacher_lr.json). `train_sizes`: (examples
    trained on, examples available), to say which kind of "more data" is open to the user."""
    aux_remedy = ("different auxiliary tasks (closer to this one) or none (transfer.aux)" if with_aux
                  else "an auxiliary task (transfer.aux)")
    warnings = []
    floor = constant.get(primary)
    if floor is not None and teacher[primary] <= floor + BARELY_ABOVE:
        warnings.append(f"the dense teacher's dev {primary} {teacher[primary]:.4f} is at or barely above the constant "
                        f"predictor's {floor:.4f}: it learned little from this data; try more teacher epochs "
                        f"(teacher.epochs=...) or {aux_remedy}")
    elif floor is not None and pruned[primary] <= floor + BARELY_ABOVE:
        # The teacher learned something and pruning lost it (seen: RTE, 100 examples, sparsity 0.9).
        warnings.append(f"the pruned model's dev {primary} {pruned[primary]:.4f} does not clear the constant "
                        f"predictor's {floor:.4f} (dense teacher: {teacher[primary]:.4f}): pruning lost what the "
                        f"teacher learned; try a lower sparsity, a longer pruning schedule (prune.epochs=...) or "
                        f"{aux_remedy}")
    if untrained is not None:
        bar = untrained["metrics"][primary]
        below = [name for name, m in (("dense teacher", teacher), ("pruned model", pruned)) if m[primary] < bar]
        if below:
            remedies = ["a bi-encoder head (model.head=bi)"] if head == "cross" else []
            if "dense teacher" in below and teacher_lr is not None and teacher_lr > LOW_TEACHER_LR:
                remedies.append(f"a lower teacher learning rate (teacher.lr={LOW_TEACHER_LR:g})")
            if below == ["pruned model"]:  # the teacher clears the bar: pruning lost it (bench/results/bi_recipe.json)
                remedies += ["a longer pruning schedule (prune.epochs=...)", "a lower sparsity"]
            remedies.append(aux_remedy)
            verb = "scores" if len(below) == 1 else "score"
            warnings.append(f"the {' and the '.join(below)} {verb} below the untrained model used as a sentence "
                            f"encoder ({primary} {bar:.4f}, cosine similarity, no training): "
                            f"for this task the untrained model is better; try {', '.join(remedies)} or "
                            f"{more_data_remedy(train_sizes)}")
    return warnings
