"""What computing the teacher's outputs once saves: a pruning step with and without them.

A pruning step of the default job (MiniLM-L6, 1,000 training examples, the head `model.head=auto`
picks, hard-concrete gates, prediction + embedding + layer distillation) runs the frozen teacher
on its batch unless `distill.teacher_cache_mb` lets the job compute the teacher's outputs once
(`auxprune.teacher_outputs`). This script times forward + backward of the pruning objective both
ways on the same training batches, alternating (so a busy machine slows both alike), and the one
pass that computes the outputs; it checks that both ways give the same losses. Writes
bench/results/teacher_outputs.json with the command.

    python bench/teacher_outputs.py --tasks glue/stsb glue/mrpc --threads 1 --steps 12
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import machine  # noqa: E402

from auxprune.config import RunConfig  # noqa: E402
from auxprune.data.batching import encode, make_loader  # noqa: E402
from auxprune.distill import LayerDistiller, teacher_layers  # noqa: E402
from auxprune.losses import Objective  # noqa: E402
from auxprune.model.loading import load_pretrained  # noqa: E402
from auxprune.pipeline import load_data, resolve_head  # noqa: E402
from auxprune.pruners import PRUNERS  # noqa: E402
from auxprune.structure import Dims  # noqa: E402
from auxprune.teacher_outputs import MB, TeacherOutputs, estimated_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "teacher_outputs.json"


def timed_step(objective: Objective, batch: dict, step: int) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    parts = objective(batch, step)
    (parts["loss"] + parts["regularization"]).backward()
    seconds = time.perf_counter() - start
    objective.zero_grad(set_to_none=True)
    return seconds, {k: v.item() for k, v in parts.items()}


def measure(task: str, steps: int, examples: int) -> dict:
    config = RunConfig.model_validate({"data": {"task": task, "data_dir": os.environ.get(
        "AUXPRUNE_DATA_DIR", str(ROOT.parent / "shared" / "data")), "max_train_examples": examples}, "seed": 1})
    data, _ = load_data(config)
    head = resolve_head(config, data)
    teacher, tokenizer, _ = load_pretrained(config.model.name, num_labels=data.spec.num_labels, task=data.spec.name,
                                            labels=data.spec.labels, max_seq_len=config.model.max_seq_len,
                                            head=head["head"], pair_classifier=head["pair_classifier"] or "cosine",
                                            label_range=head["label_range"])
    teacher.eval()
    student = type(teacher)(teacher.config)
    student.load_state_dict(teacher.state_dict())
    student.train()
    items = encode(data.train, tokenizer, config.model.max_seq_len, head["head"] == "bi")
    loader = make_loader(items, config.train.batch_size, tokenizer.pad_token_id or 0, shuffle=True, seed=1)
    layers = teacher_layers(config, teacher)
    start = time.perf_counter()
    cached = TeacherOutputs.compute(teacher, items, layers=layers, batch_size=config.train.batch_size,
                                    pad_id=tokenizer.pad_token_id or 0, device=torch.device("cpu"))
    compute_s = time.perf_counter() - start
    gates = PRUNERS["hard_concrete"](Dims.of(student.config), config.prune, 384)
    layer_map = LayerDistiller(student.config.hidden_size, teacher.config.hidden_size, layers)
    ways = {name: Objective(student, config, pruner=gates, layer_map=layer_map, teacher=teacher, schedule=lambda s: ("prune", s),
                            teacher_outputs=outputs) for name, outputs in (("forward", None), ("cached", cached))}
    seconds: dict[str, list[float]] = {"forward": [], "cached": []}
    largest_gap = 0.0
    batches = iter(loader)
    for step in range(steps + 1):  # the first pair warms up (kernel choice), untimed
        batch = next(batches)
        order = ("forward", "cached") if step % 2 == 0 else ("cached", "forward")
        results = {}
        for name in order:
            torch.manual_seed(step)  # the same gate noise both ways
            results[name] = timed_step(ways[name], batch, step + 1)
        if step:
            for name in order:
                seconds[name].append(round(results[name][0], 3))
        largest_gap = max(largest_gap, *(abs(results["cached"][1][k] - v) / max(abs(v), 1e-8)
                                         for k, v in results["forward"][1].items()))
        print(f"{task} step {step}: forward {results['forward'][0]:.2f} s, cached {results['cached'][0]:.2f} s", flush=True)
    forward, with_cache = statistics.median(seconds["forward"]), statistics.median(seconds["cached"])
    return {"task": task, "head": head["head"], "train_examples": len(items), "teacher_layers": layers,
            "cache_mb": round(estimated_bytes(items, layers, teacher.config.hidden_size) / MB, 1),
            "compute_s": round(compute_s, 2), "seconds": seconds,
            "median_step_s": {"forward": forward, "cached": with_cache}, "step_saving": round(1 - with_cache / forward, 3),
            "largest_relative_loss_gap": largest_gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["glue/stsb", "glue/mrpc"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=12, help="timed steps each way")
    parser.add_argument("--examples", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    records = [measure(task, args.steps, args.examples) for task in args.tasks]
    result = {"command": "python bench/teacher_outputs.py " + shlex.join(sys.argv[1:]), "threads": args.threads,
              "protocol": "MiniLM-L6, the default head and distillation, hard-concrete gates at their start; forward + "
                          "backward of the pruning objective on the same batches, alternating; median over steps",
              "records": records, "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()], "machine": machine()}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for r in records:
        print(f"{r['task']} ({r['head']}): {r['median_step_s']['forward']:.2f} s -> {r['median_step_s']['cached']:.2f} s "
              f"a step ({100 * r['step_saving']:.0f}% less), computed once in {r['compute_s']:.0f} s, {r['cache_mb']} MB")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
