"""Starting from another run's stage 1 (`transfer.stage1_from`): the same run again ends exactly as the
run that trained it; another target starts from its encoder; other auxiliary data or settings, or a
folder without a stage 1, are refused with one line before anything is written."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from auxprune.cli import main
from test_transfer import prune_argv


def report(folder) -> dict:
    return json.loads((folder / "report.json").read_text())


def phases_logged(folder) -> set[str]:
    return {json.loads(line).get("phase") for line in (folder / "log.jsonl").read_text().splitlines()}


@pytest.fixture(scope="module")
def trained(tiny_bert, data_dir, tmp_path_factory):
    """A run with the --aux recipe (stage 1: the teacher trains on the auxiliary task first)."""
    out = tmp_path_factory.mktemp("stage1") / "a"
    assert main(prune_argv(tiny_bert, data_dir, out, "--set", "train.log_every=1")) == 0
    return out


def test_a_run_that_trains_stage1_keeps_it_with_what_it_was_trained_with(trained):
    meta = json.loads((trained / "stage1" / "meta.json").read_text())
    assert meta["phase"] == "stage1" and (trained / "stage1" / "state.pt").is_file()
    inputs = meta["trained_with"]
    assert inputs["seed"] == 2 and inputs["head"] in ("bi", "cross") and inputs["epochs"] == 1
    assert list(inputs["aux_data"]) == ["snli_dev"] and len(inputs["aux_data"]["snli_dev"]) == 16
    assert not (trained / "checkpoints").exists()  # the rest of the checkpoints are gone
    assert "stage1" in phases_logged(trained) and report(trained)["transfer"]["stage1_from"] is None


def test_the_same_run_from_its_stage1_ends_exactly_as_it(trained, tiny_bert, data_dir, tmp_path, capsys):
    again = tmp_path / "b"
    assert main(prune_argv(tiny_bert, data_dir, again, "--set", "train.log_every=1",
                           "--set", f"transfer.stage1_from={trained}")) == 0
    assert f"stage 1 from {trained}" in " ".join(capsys.readouterr().out.split())  # the summary says where it came from
    first, second = report(trained), report(again)
    assert "stage1" not in phases_logged(again)  # not one step of stage 1 trained here
    assert second["transfer"]["stage1_from"] == str(trained)
    assert second["metrics"] == first["metrics"] and second["structure"] == first["structure"]
    assert second["transfer"]["aux_metrics"] == first["transfer"]["aux_metrics"]  # after_stage1 is carried over
    assert second["transfer"]["aux_steps"] == first["transfer"]["aux_steps"]
    a, b = load_file(trained / "model" / "model.safetensors"), load_file(again / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert not (again / "stage1").exists()  # it did not train one: nothing to keep


def test_another_training_set_starts_from_the_same_stage1(trained, tiny_bert, data_dir, tmp_path):
    other = tmp_path / "c"
    assert main(prune_argv(tiny_bert, data_dir, other, "--set", f"transfer.stage1_from={trained / 'stage1'}",
                           "--max-train-examples", "32")) == 0
    r = report(other)
    assert r["status"] == "ok" and r["data"]["train_examples"] == 32
    assert r["data"]["train_available"] == report(trained)["data"]["train_available"] > 32  # the set before the cap
    assert r["transfer"]["aux_metrics"]["after_stage1"] == report(trained)["transfer"]["aux_metrics"]["after_stage1"]


@pytest.mark.parametrize("change, named", [
    (["--set", "transfer.aux.0.max_examples=40"], "aux"),  # other auxiliary data, and the setting that chose it
    (["--seed", "3"], "seed"),
    (["--set", "transfer.stage1_lr=1e-4"], "lr"),
])
def test_other_auxiliary_data_or_settings_are_refused(change, named, trained, tiny_bert, data_dir, tmp_path, capsys):
    code = main(prune_argv(tiny_bert, data_dir, tmp_path / "x", "--set", f"transfer.stage1_from={trained}", *change))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "trained with other settings" in err and f"{named}:" in err
    assert not (tmp_path / "x").exists()


def test_a_folder_without_stage1_or_a_run_without_one_is_refused(tiny_bert, data_dir, tmp_path, capsys):
    code = main(prune_argv(tiny_bert, data_dir, tmp_path / "x", "--set", f"transfer.stage1_from={tmp_path}"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no stage-1 result at" in err
    code = main(prune_argv(tiny_bert, data_dir, tmp_path / "y", "--set", f"transfer.stage1_from={tmp_path}",
                           "--set", "transfer.teacher_aux_epochs=0"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "stage1_from" in err and "does not have" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_stage1_inside_the_folder_the_run_replaces_is_refused(trained, tiny_bert, data_dir, capsys):
    code = main(prune_argv(tiny_bert, data_dir, trained, "--overwrite", "--set", f"transfer.stage1_from={trained}"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "which this run replaces" in err
    assert (trained / "stage1" / "state.pt").is_file() and (trained / "report.json").is_file()  # nothing lost
