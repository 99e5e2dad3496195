"""Small-data schedules, the untrained model as a bar, and the one-line warnings of a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from auxprune.baselines import fit_threshold, untrained_cosine_score
from auxprune.cli import cli_wording, main
from auxprune.config import build_config
from auxprune.data.batching import make_loader
from auxprune.data.tasks import Example, TaskSpec
from auxprune.errors import UserError
from auxprune.sanity import check_reference_score, check_reference_speed, check_results, check_spread, check_training_set
from auxprune.train import epoch_batches, steps_for
from conftest import letter_tokenizer, tiny_model, write_tiny_bert

BINARY = TaskSpec("pairs", "classification", ("no", "yes"), ("accuracy", "f1"), "accuracy")
SCORES = TaskSpec("scores", "regression", (), ("pearson", "spearman"), "pearson")


def loader(n: int, batch_size: int):
    return make_loader([{"input_ids": [1, 2, 3], "token_type_ids": [0, 0, 0], "label": 0}] * n, batch_size, 0, shuffle=True)


@pytest.mark.parametrize("n, minimum, per_epoch", [(100, 1000, 32), (300, 1000, 32), (1000, 1000, 32), (4000, 1000, 125),
                                                   (100, 0, 4), (100, 200, 7)])
def test_an_epoch_counts_at_least_min_epoch_examples(n, minimum, per_epoch):
    config = build_config(None, overrides=[{"train": {"min_epoch_examples": minimum, "batch_size": 32}}])
    assert epoch_batches(loader(n, 32), config) == per_epoch
    assert steps_for(4.0, loader(n, 32), config) == 4 * per_epoch
    assert steps_for(0.5, loader(n, 32), config) == -(-per_epoch // 2)


def test_threshold_is_fitted_in_either_direction():
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    threshold, above = fit_threshold(scores, np.array([0, 0, 0, 1, 1, 1]))
    assert above and 0.3 < threshold <= 0.6
    threshold, above = fit_threshold(scores, np.array([1, 1, 1, 0, 0, 0]))
    assert not above and 0.3 < threshold <= 0.6
    # Ties in the scores: a cut never separates equal scores.
    threshold, above = fit_threshold(np.array([0.5, 0.5, 0.5, 0.9]), np.array([0, 1, 0, 1]))
    assert above and 0.5 < threshold <= 0.9


def pairs(n: int, seed: int = 0) -> list[Example]:
    """Pairs whose second side is the first one (similar, label 1 / score 5) or unrelated (0 / 0)."""
    rng = np.random.default_rng(seed)
    words = ["cat sat", "dog ran", "sun shone", "rain fell", "bird sang", "car drove", "fish swam", "tree grew"]
    out = []
    for i in range(n):
        a = words[i % len(words)]
        same = bool(rng.integers(2))
        out.append(Example(a, a if same else words[(i + 3) % len(words)], int(same)))
    return out


def test_untrained_cosine_score_scores_pairs(tmp_path):
    tokenizer = letter_tokenizer(tmp_path / "tok")
    encoder = tiny_model(pooling="mean").auxprune
    train, dev = pairs(60, seed=1), pairs(40, seed=2)
    result = untrained_cosine_score(encoder, tokenizer, BINARY, train, dev, max_len=32)
    # Identical sentences have cosine 1, so a threshold separates them from the rest exactly.
    assert result["metrics"]["accuracy"] == 1.0 and "threshold" in result
    scored = [Example(e.text_a, e.text_b, 5.0 * e.label) for e in dev]
    result = untrained_cosine_score(encoder, tokenizer, SCORES, train, scored, max_len=32)
    assert result["metrics"]["pearson"] > 0.5 and "threshold" not in result
    single = [Example(e.text_a, None, e.label) for e in dev]
    assert untrained_cosine_score(encoder, tokenizer, BINARY, train, single, max_len=32) is None
    three = TaskSpec("nli", "classification", ("a", "b", "c"), ("accuracy",), "accuracy")
    assert untrained_cosine_score(encoder, tokenizer, three, train, dev, max_len=32) is None


def test_training_sets_too_small_are_refused_and_small_ones_warned():
    with pytest.raises(UserError, match="train.tsv: 9 training examples; at least 10"):
        check_training_set(pairs(9), BINARY, "train.tsv")
    assert "only 30 training examples" in check_training_set(pairs(30), BINARY, "t")[0]
    assert check_training_set(pairs(60), BINARY, "t") == []
    # cut by --max-train-examples: the refusal and the warning say so, and that more of the set is there
    with pytest.raises(UserError) as refused:
        check_training_set(pairs(9), BINARY, "glue/rte", available=2490)
    assert "(--max-train-examples 9 of 2,490)" in cli_wording(str(refused.value))
    assert cli_wording(check_training_set(pairs(30), BINARY, "t", available=2490)[0]).endswith(
        "or more of the training set (this run used 30 of 2,490: --max-train-examples)")
    with pytest.raises(UserError, match="no training example of class 'yes'"):
        check_training_set([Example("a", "b", 0)] * 60, BINARY, "t")
    rare = [Example("a", "b", 0)] * 58 + [Example("a", "a", 1)] * 2
    assert "class 'yes' (2)" in check_training_set(rare, BINARY, "t")[0]


def test_results_below_a_bar_are_flagged():
    constant = {"accuracy": 0.53}
    untrained = {"metrics": {"accuracy": 0.70}}
    assert check_results("accuracy", {"accuracy": 0.80}, {"accuracy": 0.75}, constant, untrained) == []
    barely = check_results("accuracy", {"accuracy": 0.535}, {"accuracy": 0.54}, constant, None)
    assert len(barely) == 1 and "at or barely above the constant predictor" in barely[0] and "(transfer.aux)" in barely[0]
    # the library names config fields; the command line prints its flags
    assert "(--set teacher.epochs=...) or an auxiliary task (--aux)" in cli_wording(barely[0]) and "--" not in barely[0]
    below = check_results("accuracy", {"accuracy": 0.80}, {"accuracy": 0.65}, constant, untrained)
    assert len(below) == 1 and "pruned model scores below the untrained model" in below[0]
    assert "(model.head=bi)" in below[0]  # a cross-encoder is told about the bi-encoder head
    assert ("a bi-encoder head (--set model.head=bi), a longer pruning schedule (--set prune.epochs=...), a lower "
            "sparsity, an auxiliary task (--aux) or more data") in cli_wording(below[0])
    bi = check_results("accuracy", {"accuracy": 0.80}, {"accuracy": 0.65}, constant, untrained, head="bi")
    assert "model.head=bi" not in bi[0] and "(transfer.aux)" in bi[0] and "(--aux)" in cli_wording(bi[0])
    both = check_results("accuracy", {"accuracy": 0.60}, {"accuracy": 0.65}, constant, untrained)
    assert "dense teacher and the pruned model" in both[0]
    assert "prune.epochs" not in both[0]  # the teacher is below too: a longer pruning schedule cannot help
    # The teacher learned, the pruned model fell to the constant predictor: said apart from the untrained bar.
    lost = check_results("accuracy", {"accuracy": 0.57}, {"accuracy": 0.52}, constant, untrained, head="bi")
    assert len(lost) == 2 and "pruned model's dev accuracy 0.5200 does not clear the constant predictor's 0.5300" in lost[0]
    assert "(dense teacher: 0.5700)" in lost[0] and "a lower sparsity" in lost[0]
    assert "(--set prune.epochs=...) or an auxiliary task (--aux)" in cli_wording(lost[0])
    assert "below the untrained model" in lost[1]
    assert len(check_results("accuracy", {"accuracy": 0.57}, {"accuracy": 0.535}, constant, None)) == 1  # barely above
    assert check_results("accuracy", {"accuracy": 0.57}, {"accuracy": 0.545}, constant, None) == []  # clears it
    # A run that used auxiliary tasks is not told to add one; the teacher trained on them can be what fell.
    used = check_results("accuracy", {"accuracy": 0.516}, {"accuracy": 0.538}, constant, untrained, head="bi",
                         with_aux=True)
    assert len(used) == 2 and all("an auxiliary task" not in line for line in used)
    assert "different auxiliary tasks (closer to this one) or none (--aux)" in cli_wording(used[0])
    assert "try different auxiliary tasks (closer to this one) or none (transfer.aux) or more data" in used[1]
    # "More data" says which: the examples a capped run left unused, or labelling more once it used them all.
    capped = check_results("accuracy", {"accuracy": 0.80}, {"accuracy": 0.65}, constant, untrained, head="bi",
                           train_sizes=(100, 2490))
    assert cli_wording(capped[0]).endswith("or more of the training set (this run used 100 of 2,490: "
                                           "--max-train-examples)")
    whole = check_results("accuracy", {"accuracy": 0.80}, {"accuracy": 0.65}, constant, untrained, head="bi",
                          train_sizes=(2490, 2490))
    assert whole[0].endswith("or more labelled data (this run used the whole training set, 2,490 examples)")
    # The teacher already at the floor: one line about it, none repeated about the pruned model.
    assert len(check_results("accuracy", {"accuracy": 0.535}, {"accuracy": 0.50}, constant, None)) == 1


def test_a_teacher_below_the_untrained_model_is_pointed_to_a_lower_learning_rate_when_it_trained_faster():
    constant, untrained = {"accuracy": 0.53}, {"metrics": {"accuracy": 0.62}}
    fast = check_results("accuracy", {"accuracy": 0.59}, {"accuracy": 0.58}, constant, untrained, head="bi",
                         teacher_lr=1e-4)
    assert len(fast) == 1 and "a lower teacher learning rate (teacher.lr=2e-05)" in fast[0]
    assert "(--set teacher.lr=2e-05), an auxiliary task (--aux) or more data" in cli_wording(fast[0])
    # at the low rate already, a teacher loaded from a folder (None), or a teacher above the bar: not suggested
    for lr, teacher in ((2e-5, 0.59), (None, 0.59), (1e-4, 0.70)):
        lines = check_results("accuracy", {"accuracy": teacher}, {"accuracy": 0.58}, constant, untrained, head="bi",
                              teacher_lr=lr)
        assert lines and all("teacher.lr" not in line for line in lines)


def test_run_reports_its_schedule_the_untrained_bar_and_warnings(tmp_path, data_dir, capsys, monkeypatch):
    """A sentence-transformers folder on a pair task: the report carries the untrained model's cosine
    score, the steps each phase ran and why, and the warnings (a small set; results below the bar)."""
    model, other = tmp_path / "st_bert", tmp_path / "other_st"
    write_tiny_bert(model, sentence_transformers=True)
    write_tiny_bert(other, sentence_transformers=True, seed=1)
    out = tmp_path / "run"
    torch.manual_seed(0)
    code = main(["prune", "--model", str(model), "--task", "glue/stsb", "--data-dir", str(data_dir), "--sparsity", "0.5",
                 "--speed-reference", str(other),
                 "--max-train-examples", "40", "--output", str(out), "--set", "teacher.epochs=1", "--set", "prune.epochs=1",
                 "--set", "finetune.epochs=1", "--set", "train.batch_size=8", "--set", "data.max_dev_examples=40",
                 "--set", "model.max_seq_len=32", "--set", "train.min_epoch_examples=80", "--set", "train.threads=1"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    schedule = report["schedule"]
    assert schedule["steps_per_epoch"] == 10 and schedule["batches_per_pass"] == 5
    assert {k: p["steps"] for k, p in schedule["phases"].items()} == {"teacher": 10, "prune": 10, "finetune": 10}
    assert "fewer than train.min_epoch_examples=80" in schedule["why"]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in log if r["phase"] == "teacher") == 10
    # A sentence-embedding model on a pair task: model.head=auto picks the bi-encoder, and says why.
    assert report["head"]["head"] == "bi" and "sentence-embedding model on a sentence-pair task" in report["head"]["why"]
    untrained = report["untrained"]
    assert set(untrained["metrics"]) == {"pearson", "spearman"} and report["metrics"]["untrained"] == untrained["metrics"]
    assert "only 40 training examples" in report["warnings"][0]
    bar = untrained["metrics"]["pearson"]
    below = any("below the untrained model" in w for w in report["warnings"])
    assert below == (min(report["metrics"]["teacher"]["pearson"], report["metrics"]["pruned"]["pearson"]) < bar)
    # The bi-encoder's spread: different dev sentences' embeddings, pruned and teacher, with its warning's rule.
    spread = report["embedding_spread"]
    assert spread["sentences"] == 40 and -1 <= spread["pruned_mean_cosine"] <= 1 and -1 <= spread["teacher_mean_cosine"] <= 1
    assert any("nearly the same embedding" in w for w in report["warnings"]) == bool(check_spread(spread))
    # The model it was timed beside, a sentence-embedding model too, used as it is: the same bar, its own warning.
    reference = report["reference_score"]
    assert reference["model"] == str(other) and report["metrics"]["reference_as_is"] == reference["metrics"]
    assert set(reference["metrics"]) == {"pearson", "spearman"} and reference["metrics"] != untrained["metrics"]
    below_reference = any(f"below that of {other}" in w for w in report["warnings"])
    assert below_reference == (report["metrics"]["pruned"]["pearson"] < reference["metrics"]["pearson"])
    card = (out / "model" / "README.md").read_text()
    assert f"{other} as is (cosine)" in card and f"`{other}`, the model it was set beside, scores" in card
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps lines to the terminal
    assert "untrained" in printed and "warning:" in printed and "steps: teacher 10, prune 10" in printed
    from rich.console import Console

    from auxprune import summary
    monkeypatch.setattr(summary, "console", Console(markup=False, width=200))  # no wrapping: one header per column
    summary.print_prune_summary(report, out)
    assert "┃ other_st as is (cosine) ┃" in capsys.readouterr().out


def test_a_model_pruned_below_the_model_it_was_sized_to_says_so():
    reference = {"model": "minilm", "method": "cosine", "metrics": {"accuracy": 0.743, "f1": 0.83}}
    (line,) = check_reference_score("accuracy", {"accuracy": 0.716, "f1": 0.81}, reference, sized_to=True)
    assert "dev accuracy 0.7160 is below that of minilm, the model whose encoder size it was pruned to" in line
    assert "(0.7430, cosine similarity, no training)" in line and "prune.target_params" in line
    (timed,) = check_reference_score("accuracy", {"accuracy": 0.716}, reference)
    assert "the model it was timed beside (prune.speed_reference)" in timed
    assert check_reference_score("accuracy", {"accuracy": 0.75}, reference) == []
    assert check_reference_score("accuracy", {"accuracy": 0.5}, None) == []


def test_the_reference_bar_is_not_computed_for_the_run_s_own_model(tmp_path):
    from types import SimpleNamespace

    from auxprune.pipeline import reference_as_is_score

    model, plain = tmp_path / "st_bert", tmp_path / "plain_bert"
    write_tiny_bert(model, sentence_transformers=True)
    write_tiny_bert(plain)

    def config(name, reference):
        return build_config(None, overrides=[{"model": {"name": str(name)}, "prune": {"speed_reference": str(reference)}}])

    pairs = SimpleNamespace(train=[Example("a b", "c d", 1.0)])
    assert reference_as_is_score(config(model, model), pairs, accelerator=None) is None  # its bar: `untrained`
    assert reference_as_is_score(config(model, plain), pairs, accelerator=None) is None  # no sentence encoder
    singles = SimpleNamespace(train=[Example("a b", None, 1)])
    assert reference_as_is_score(config(plain, model), singles, accelerator=None) is None  # no pairs to compare


def test_a_collapsed_bi_encoder_is_flagged_and_a_healthy_one_is_not():
    healthy = {"sentences": 64, "pruned_mean_cosine": 0.258, "teacher_mean_cosine": 0.18}  # MPNet RTE --aux run
    assert check_spread(healthy) == []
    near = {**healthy, "pruned_mean_cosine": 0.747, "teacher_mean_cosine": 0.13}  # MPNet RTE hidden baseline
    (line,) = check_spread(near, families=("heads", "ffn_units", "hidden"))
    assert "mean cosine 0.747 between 64 dev sentences; its teacher's 0.130" in line and "transfer.aux" in line
    assert "prune.families=[heads,ffn_units]" in line and line.endswith("or a lower sparsity")
    (tried,) = check_spread(near, with_aux=True, families=("heads", "ffn_units"))  # remedies it has not tried
    assert "transfer.aux" not in tried and "prune.families" not in tried and tried.endswith("try a lower sparsity")
    assert check_spread({**healthy, "pruned_mean_cosine": 1.0}) != []
    assert check_spread(None) == [] and check_spread({"sentences": 3, "pruned_mean_cosine": 1.0}) == []


def test_the_spread_is_one_for_one_vector_and_low_for_different_ones():
    from auxprune.baselines import distinct_first_sentences, off_diagonal_cosines

    same = torch.tensor([[0.6, 0.8, 0.0]]).repeat(4, 1) * torch.tensor([[1.0], [2.0], [3.0], [0.5]])  # scale ignored
    assert torch.allclose(off_diagonal_cosines(same), torch.ones(12))
    assert off_diagonal_cosines(torch.eye(3)).abs().max() == 0 and off_diagonal_cosines(torch.eye(3)).numel() == 6
    examples = [Example("a", "x", 1.0), Example("b", "y", 2.0), Example("a", "z", 3.0), Example("c", "w", 0.0)]
    assert distinct_first_sentences(examples, 3) == ["a", "b", "c"]


def test_a_model_pruned_to_anothers_size_but_slower_than_it_is_flagged():
    def speed(pruned_ms, other_ms):
        return {"batch_size": 32, "seq_len": 40, "reference": {"model": "minilm", "latency_ms": other_ms,
                                                               "pruned_latency_ms": pruned_ms, "speedup": other_ms / pruned_ms}}

    assert check_reference_speed(None) == [] and check_reference_speed({"batch_size": 32}) == []
    assert check_reference_speed(speed(110.0, 100.0)) == []  # within the timing's noise
    (line,) = check_reference_speed(speed(150.0, 100.0), families=("heads", "ffn_units"))
    assert "150 ms" in line and "minilm 100 ms" in line and "prune.families=[heads,ffn_units,hidden]" in line
    (line,) = check_reference_speed(speed(150.0, 100.0), families=("heads", "ffn_units", "hidden"))
    assert "prune.families" not in line and "prune.target_params" in line  # only what the run has not tried
    (line,) = check_reference_speed({**speed(150.0, 100.0), "reference": {**speed(150.0, 100.0)["reference"],
                                                                          "sized_to": False}})
    assert "slower than the model it was timed beside" in line and "encoder size" not in line


def test_warnings_print_their_bracketed_settings(capsys):
    """rich reads `[...]` as markup: a remedy such as prune.families=[heads,ffn_units,hidden] must reach the user."""
    from auxprune.summary import console, print_warnings

    print_warnings(["try narrowing the hidden size too (prune.families=[heads,ffn_units,hidden])"])
    console.print("pooling: mean (data/[v2]/1_Pooling/config.json)")
    printed = capsys.readouterr().out
    assert "(prune.families=[heads,ffn_units,hidden])" in printed and "data/[v2]/1_Pooling" in printed
