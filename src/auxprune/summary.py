"""Readable end-of-run summaries (rich tables on stderr-free stdout)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

# No markup: rich would read a bracketed part of a line (a config value such as
# `prune.families=[heads,ffn_units,hidden]`, a file name, a task) as a style tag and drop it.
console = Console(markup=False)


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def print_prune_summary(report: dict, output: Path) -> None:
    metrics = report["metrics"]
    table = Table(title=f"auxprune: {report['task']} at target sparsity {report['target_sparsity']}")
    table.add_column("")
    table.add_column("dense teacher", justify="right")
    table.add_column("pruned", justify="right")
    table.add_column("constant predictor", justify="right")
    bars = [metrics["constant_baseline"]]
    if metrics.get("untrained"):
        table.add_column("untrained (cosine)", justify="right")
        bars.append(metrics["untrained"])
    if metrics.get("reference_as_is"):  # the model it was set beside, used as it is
        table.add_column(f"{short_name(report['reference_score']['model'])} as is (cosine)", justify="right")
        bars.append(metrics["reference_as_is"])
    blank = [""] * len(bars)
    for name in metrics["pruned"]:
        table.add_row(name, _fmt(metrics["teacher"][name]), _fmt(metrics["pruned"][name]),
                      *(_fmt(bar.get(name, "")) for bar in bars))
    params = report["params"]
    table.add_row("encoder params", f"{params['encoder_total']:,}", f"{params['encoder_kept']:,}", *blank)
    table.add_row("total params", f"{params['dense_total']:,}", f"{params['total']:,}", *blank)
    speed = report["speed"]
    table.add_row(f"latency ms ({speed['batch_size']}x{speed['seq_len']})", _fmt(speed["dense_latency_ms"]),
                  _fmt(speed["pruned_latency_ms"]), *blank)
    console.print(table)
    processes = report.get("processes", 1)
    console.print(f"sparsity {report['sparsity']:.4f} (target {report['target_sparsity']}), "
                  f"speed-up {speed['speedup']}x, {report.get('precision', 'fp32')}"
                  f"{' (auto)' if report.get('precision_why', '').startswith('auto') else ''}, "
                  f"{processes} process{'es' if processes > 1 else ''}, time {report['timing']['total']:.0f} s "
                  f"({', '.join(f'{k} {v:.0f}s' for k, v in report['timing'].items() if k != 'total')})"
                  + (f", peak memory {report['peak_memory_mb'] / 1024:.1f} GB" if report.get("peak_memory_mb") else ""))
    if report.get("precision_hint"):
        console.print(f"precision: {report['precision_hint']}")
    if report.get("target"):
        console.print(f"size: {report['target']['why']}")
    if speed.get("reference"):
        console.print(reference_speed_line(speed["reference"]))
    pooling = (report.get("model") or {}).get("pooling")
    if pooling:
        console.print(f"pooling: {pooling['mode']} ({pooling['why']})")
    if report.get("head"):
        console.print(head_line(report["head"]))
    if report.get("schedule"):
        console.print(schedule_line(report["schedule"]))
    if report.get("transfer"):
        for line in transfer_lines(report["transfer"]):
            console.print(line)
    print_warnings(report.get("warnings", []))
    console.print(f"model: {output / 'model'}  report: {output / 'report.json'}  plot: {output / 'structure.png'}")


def short_name(model: str) -> str:
    """A model's name for a column header: a packaged name as it is, a folder by its last part."""
    return Path(model).name or model


def print_warnings(warnings: list[str]) -> None:
    """One line each, as the summary words them: said when the run starts too, where the user can still act on
    them (a precision that will be slow here, a training set too small), rather than only hours later."""
    from auxprune.cli import cli_wording

    for warning in warnings:
        console.print(Text("warning:", style="bold yellow"), cli_wording(warning))


def reference_speed_line(reference: dict) -> str:
    """The pruned model beside the model whose size it was pruned to (`speed.reference`)."""
    return (f"speed beside {reference['model']} (its architecture, timed on the same batch): pruned "
            f"{reference['pruned_latency_ms']:g} ms, {reference['model']} {reference['latency_ms']:g} ms "
            f"({reference['speedup']:g}x its speed)")


def head_line(head: dict) -> str:
    """Which task head the run trained, and why."""
    kind = {"cross": "cross-encoder (a pair read as one sequence)",
            "bi": "bi-encoder (each side encoded alone, compared by cosine)"}[head["head"]]
    detail = f", classes from {head['pair_classifier']}" if head.get("pair_classifier") else ""
    detail += f", labels {head['label_range'][0]:g}-{head['label_range'][1]:g} as cosine 0-1" if head.get("label_range") else ""
    return f"head: {kind}{detail} ({head['why']})"


def schedule_line(schedule: dict) -> str:
    """Steps per phase and the rule that set them, on one line."""
    steps = ", ".join(f"{name} {p['steps']}" for name, p in schedule["phases"].items() if p)
    return f"steps: {steps} ({schedule['why']})"


def transfer_lines(t: dict) -> list[str]:
    """What the auxiliary tasks did, in two or three lines: sources, choices, their own dev metrics."""
    sources = ", ".join(f"{a['name']} ({a['train_examples']:,})" for a in t["aux"])
    how = t["how"] if t["how"] != "sequential" else f"sequential (stage 1: {t['stage1']}, {t['stage1_epochs']} epochs)"
    choices = [f"what {t['what']}/{t['share']}"]
    if t["when"]:
        choices.append(f"weight {t['when']['weight']} {t['when']['shape']} over {'+'.join(t['when']['phases'])}")
    if t.get("stage1_from"):
        choices.append(f"stage 1 from {t['stage1_from']}")
    elif t.get("teacher_aux_epochs"):
        choices.append(f"teacher {t['teacher_aux_epochs']} epoch(s) on them first")
    distill_weight = t.get("aux_distill_weight", t.get("aux_distill"))  # reports before issue 17 say aux_distill
    if distill_weight:
        phases = t.get("aux_distill_phases")
        choices.append(f"distillation on their inputs x {distill_weight}" + (f" over {'+'.join(phases)}" if phases else ""))
    lines = [f"transfer: {how} from {sources}; {', '.join(choices)}; {t['aux_steps']:,} auxiliary batches"]
    for stage, by_task in t["aux_metrics"].items():
        if not isinstance(by_task, dict):  # a figure of stage 1 itself, e.g. its expected sparsity
            lines.append(f"{stage.replace('_', ' ')}: {by_task:.4f}")
            continue
        if not by_task:  # no labelled auxiliary task with a dev split (masked LM has none)
            continue
        scores = "; ".join(f"{task} " + ", ".join(f"{k} {v:.4f}" for k, v in m.items()) for task, m in by_task.items())
        lines.append(f"auxiliary dev ({stage.replace('_', ' ')}): {scores}")
    return lines


def print_metrics(result: dict) -> None:
    table = Table(title=f"{result['model']} on {result['task']} dev ({result['dev_examples']} examples)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result["metrics"].items():
        table.add_row(name, _fmt(value))
    console.print(table)


def print_structure(info: dict) -> None:
    s = info["structure"]
    table = Table(title=f"{info['model']}: task {info['task']}, {info.get('head', 'cross')}-encoder, pooling {info['pooling']}, "
                        f"hidden {s['hidden_kept']}/{s['hidden_total']}, sparsity {info['sparsity']:.4f}")
    for column in ("layer", "heads", "FFN units", "attention", "FFN"):
        table.add_column(column, justify="right")
    for i, layer in enumerate(s["layers"], start=1):
        table.add_row(str(i), str(layer["heads"]), str(layer["ffn_units"]),
                      "kept" if layer["attention_kept"] else "removed", "kept" if layer["ffn_kept"] else "removed")
    console.print(table)
    p = info["params"]
    console.print(f"encoder params {p['encoder_kept']:,} of {p['encoder_total']:,}; embeddings {p['embeddings']:,}; total {p['total']:,}")
