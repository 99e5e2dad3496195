"""The config tree: fields renamed in issue 17 keep reading their old names."""

from __future__ import annotations

import yaml

from auxprune.config import build_config, parse_assignment, read_yaml, to_yaml, validate
from auxprune.summary import transfer_lines

AUX = {"transfer": {"aux": [{"task": "aux/snli_dev.tsv"}]}}


def test_old_field_names_load_from_a_config_file_and_from_set(tmp_path):
    """A config.yaml written before the renames (prune.lambda_lr, transfer.aux_distill) still runs, and
    resaving it writes the new names."""
    old = tmp_path / "config.yaml"
    old.write_text(yaml.safe_dump({"prune": {"lambda_lr": 2.5}, "transfer": {**AUX["transfer"], "aux_distill": 0.25}}))
    config = build_config(file=old)
    assert validate(read_yaml(old)) == build_config(None, file=old)  # --resume reads a run's config.yaml so
    assert config.prune.lambda2_lr == 2.5 and config.transfer.aux_distill_weight == 0.25
    saved = yaml.safe_load(to_yaml(config))
    assert saved["prune"]["lambda2_lr"] == 2.5 and "lambda_lr" not in saved["prune"]
    assert saved["transfer"]["aux_distill_weight"] == 0.25 and "aux_distill" not in saved["transfer"]
    assert build_config(file=old, overrides=[parse_assignment("transfer.aux_distill=0.5")]).transfer.aux_distill_weight == 0.5
    # the new name wins over an old one in an earlier layer
    assert build_config(file=old, overrides=[parse_assignment("transfer.aux_distill_weight=0.75")]
                        ).transfer.aux_distill_weight == 0.75
    assert build_config(overrides=[parse_assignment("prune.lambda_lr=3")]).prune.lambda2_lr == 3


def test_summary_reads_reports_written_before_the_rename():
    report = {"aux": [{"name": "snli", "train_examples": 10}], "how": "joint", "what": "both", "share": "hard",
              "when": None, "aux_steps": 4, "aux_metrics": {}, "aux_distill_phases": ["prune"]}
    for key in ("aux_distill", "aux_distill_weight"):
        assert "distillation on their inputs x 0.5 over prune" in transfer_lines({**report, key: 0.5})[0]
