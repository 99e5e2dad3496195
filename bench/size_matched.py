"""Issue 20 benchmark: MPNet-base pruned to MiniLM-L6's encoder size against MiniLM-L6 itself.

The question users ask: "I have a strong base-size model and 1,000 labelled examples; does pruning it
(with transfer) give a model as small and fast as MiniLM-L6 that is better than fine-tuning MiniLM-L6?"
RTE, MRPC and STS-B with 1,000 training examples (the limited-data protocol, full dev set), the
transfer pairs of the transfer benchmark (bench/transfer_limited_data.py: RTE with SNLI dev + SICK
entailment + XNLI English dev, MRPC with Twitter URL, STS-B with SICK relatedness), the quick preset,
the head `model.head=auto` picks (the bi-encoder: both models are sentence-embedding models and these
are pair tasks); MiniLM-L6 in fp32 (the default, in which its tables were measured), MPNet-base in
bf16 (see the shortening below). Rows per task:

- untrained MiniLM-L6 / untrained MPNet-base: each model used as sentence-transformers intends, no
  training (every run's `metrics.untrained`, the cosine score);
- MiniLM-L6 dense: fine-tuned on the target (the teacher of a MiniLM run);
- MiniLM-L6 dense + transfer: the same after the transfer recipe's intermediate-task training (the
  teacher of a MiniLM `--aux` run);
- MPNet-base dense: the teacher of the MPNet baseline cell, fine-tuned on the target;
- MPNet-base dense + intermediate training: the teacher of the MPNet `--aux` cell;
- MPNet-base pruned to MiniLM-L6's encoder size (`--size-of minilm`): baseline (no auxiliary task)
  and the `--aux` recipe (transfer);
with the metric (mean ± sd over seeds), encoder-layer and total parameters, and latency (p50 of
torch eager and fp32 onnxruntime at 1 x 128 and 32 x 128, random tokens, one model at a time in
this process; a bi-encoder is timed as it is used: sentence embeddings, what its ONNX graph computes).
Target: MPNet-base pruned + transfer beats MiniLM-L6 dense + transfer on all three pairs at no more
than its latency.

Cells (run folders under bench/work/size_matched/), per seed and task: `mpnet_baseline` and
`mpnet_transfer`; and `minilm_baseline` / `minilm_transfer` (sparsity 0.6, bench/bi_encoder.py's
command with `--model minilm`) only where bench/results/bi_encoder.json has no record of that task,
method and seed (there: MRPC and STS-B; RTE runs here). The MiniLM rows are those runs' teachers; the
pruned MiniLM model is a by-product, not a row. On request (`--methods aux_in_pruning`, after the
baseline cell): MPNet's `--aux` cell pruning the baseline cell's teacher, no intermediate epoch.
Rows from bench/bi_recipe.py `--model mpnet` where it has them (RECIPE_ROWS): the same two cells' teachers
pruned with the recipe the size-matched cells lack, 12 pruning epochs (the default since 2026-12-01; this
protocol pins 6) and the hidden dimension prunable too (`prune.families=[heads,ffn_units,hidden]`); the
target is judged for that recipe too, on its own line.

Shortened, so that an MPNet cell fits in about 60 minutes on 2 cores (MPNet-base is about 6x the
cost of MiniLM-L6 per step: forward+backward of 32 x 64 takes 6.3 s fp32 on 2 cores), written into
the results file's `protocol` (see SHORTENED): the MPNet cells run with `model.max_seq_len=64`
(MiniLM: 128) and train in bf16 autocast (`train.precision=bf16`; on a CPU that multiplies bf16 it
halves a whole job and ended level with fp32 on MiniLM-L6, README "bf16 against fp32: whole jobs";
the STS-B seed-1 baseline cell was run in fp32 first and is kept as MPNet's own check, shown beside
the table, not averaged in), and the MPNet `--aux` cell takes 5,000 auxiliary examples in total
(split over the sources; the transfer benchmark takes 20,000), which bounds the teacher's
intermediate epoch. The shorter sequences and fewer auxiliary examples can only cost MPNet accuracy,
so they do not favour the target. The MiniLM cells are not shortened: they must match the
bi_encoder.json records they stand beside. Each record keeps its wall time: check the 60 minutes on
seed 1 before running seeds 2-3.

Resumable: a cell in the results file is skipped, a finished run folder is read, an interrupted one
resumes with `auxprune prune --resume DIR`. Latency is a separate step run after the cells, on an
otherwise idle machine; a (model folder, runtime, threads) already measured is skipped.

    python bench/size_matched.py --tasks glue/stsb --seeds 1 --threads 2     # cells (seed 1 first)
    python bench/size_matched.py --latency --threads 2                       # latency of what exists
    python bench/size_matched.py --table                                     # the README table
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
import bi_encoder  # noqa: E402
import peer_sentence_transformers as peer  # noqa: E402
from prune_cell import TABLE_PRECISION, TABLE_SCHEDULE, run_prune  # noqa: E402
from results_file import add_record, display, machine  # noqa: E402
from transfer_limited_data import AUX, AUX_EXAMPLES, aux_sets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "size_matched.json"
WORK = ROOT / "bench" / "work" / "size_matched"
BI_RESULTS = ROOT / "bench" / "results" / "bi_encoder.json"  # MiniLM-L6 rows measured there
BI_WORK = ROOT / "bench" / "work" / "bi_encoder"
RECIPE_RESULTS = ROOT / "bench" / "results" / "bi_recipe.json"  # MPNet cells of other pruning recipes (RECIPE_ROWS)
TASKS = ("glue/rte", "glue/mrpc", "glue/stsb")
METHODS = ("baseline", "transfer")
# MPNet only, on request (--methods): what transfers when the auxiliary data acts in pruning alone. The --aux cell's
# command pruning the baseline cell's teacher (teacher.path, so transfer.teacher_aux_epochs=0: no intermediate
# epoch); on MiniLM-L6 at 1,000 examples this was the best STS-B setting measured (bench/small_data_coupling.py
# baseline_teacher) and below the baseline on RTE and MRPC.
EXTRA_METHODS = ("aux_in_pruning",)
EXAMPLES = 1000
MINILM_SPARSITY = 0.6  # the bi_encoder.json cells whose teachers are the MiniLM rows
# The shortening of the MPNet cells (module docstring); MiniLM cells keep bench/bi_encoder.py's settings.
MPNET_SETS = ["--set", "model.max_seq_len=64"]
MPNET_AUX_EXAMPLES = 5000  # in total per target, split evenly over its sources (transfer benchmark: 20,000)
# MPNet cells train in bf16 autocast (module docstring); a cell recorded in another precision (the first STS-B cell,
# fp32) is a cell of its own: shown beside the table as a precision check, not averaged into its rows.
MPNET_PRECISION = "bf16"
SHORTENED = ("MPNet-base cells: model.max_seq_len=64 (MiniLM-L6: 128) and train.precision=bf16 (half the time of "
             "fp32 on a CPU that multiplies bf16, level with it on MiniLM-L6 whole jobs; the fp32 STS-B seed-1 "
             "baseline cell is kept as MPNet's own check); the MPNet --aux cell: "
             f"{MPNET_AUX_EXAMPLES:,} auxiliary examples in total, split evenly over the sources (transfer "
             "benchmark and the MiniLM-L6 rows: 20,000), which shortens the teacher's intermediate-task epoch; "
             "both only to fit a cell in about 60 minutes on 2 cores, and both can only cost MPNet accuracy")
# Encoder-layer and total parameters of the dense MiniLM-L6 bi-encoder (a MiniLM run's report: encoder_total and
# dense_total), for MiniLM rows whose run folder is not on this machine.
MINILM_PARAMS = {"encoder": 10_646_784, "total": 22_565_376}
RUNTIMES = ("torch", "onnxruntime")
SHAPES = ("1x128", "32x128")
ROWS = (  # (row, label) in table order
    ("minilm_untrained", "untrained MiniLM-L6"),
    ("minilm_dense", "MiniLM-L6 dense"),
    ("minilm_transfer", "MiniLM-L6 dense + transfer"),
    ("minilm_peer", "MiniLM-L6 fine-tuned by sentence-transformers"),
    ("mpnet_untrained", "untrained MPNet-base"),
    ("mpnet_dense", "MPNet-base dense"),
    ("mpnet_dense_transfer", "MPNet-base dense + intermediate training"),
    ("mpnet_pruned", "MPNet-base pruned to MiniLM-L6 size"),
    ("mpnet_pruned_transfer", "MPNet-base pruned to MiniLM-L6 size + transfer (--aux)"),
    ("mpnet_pruned_aux_in_pruning", "MPNet-base pruned to MiniLM-L6 size + auxiliary data in pruning only"),
    ("mpnet_pruned_x2_hidden", "MPNet-base pruned to MiniLM-L6 size, 12 pruning epochs, hidden dims too"),
    ("mpnet_pruned_transfer_x2_hidden", "MPNet-base pruned to MiniLM-L6 size + transfer (--aux), 12 pruning epochs, "
                                        "hidden dims too"),
)
# bench/bi_recipe.py's MPNet variants shown here (in MPNET_PRECISION), by row: each prunes the teacher of this
# benchmark's cell of its method, so it differs from that cell's pruned row by the recipe alone.
RECIPE_ROWS = {"mpnet_pruned_x2_hidden": "prune_x2_hidden", "mpnet_pruned_transfer_x2_hidden": "transfer_x2_hidden"}
# The transfer rows the target is judged on, each with the name of its recipe in the verdict lines.
TARGET_ROWS = {"mpnet_pruned_transfer": "", "mpnet_pruned_transfer_x2_hidden": "12 pruning epochs, hidden dims too"}
TASK_INDEPENDENT = ("minilm_dense", "mpnet_dense")  # rows whose model's architecture no task changes (latency)
# the EXTRA_METHODS' rows and bench/bi_recipe.py's: in a task's table once measured there
# and the peer tool's MiniLM-L6 (bench/peer_sentence_transformers.py)
ON_REQUEST_ROWS = ("mpnet_pruned_aux_in_pruning", *RECIPE_ROWS, "minilm_peer")
# Rows whose model has the architecture of another row's (the bi-encoder times the encoder only): latency and
# parameters are that row's when not measured for this one.
SAME_AS = {"minilm_untrained": "minilm_dense", "minilm_transfer": "minilm_dense", "minilm_peer": "minilm_dense",
           "mpnet_untrained": "mpnet_dense", "mpnet_dense_transfer": "mpnet_dense"}


def cell_name(task: str, model: str, method: str, seed: int) -> str:
    return f"{task.split('/')[-1]}_{model}_{method}{precision_suffix(model)}_seed{seed}"


def precision_suffix(model: str) -> str:
    """What a run folder's name says of its precision: nothing for fp32, else `_bf16`, so that a cell of another
    precision keeps its own folder."""
    precision = cell_precision(model)
    return "" if precision == "fp32" else f"_{precision}"


def cell_precision(model: str) -> str:
    return MPNET_PRECISION if model == "mpnet" else "fp32"


def precision_of(r: dict) -> str:
    """A cell record's training precision (records from before MPNet moved to bf16 have none: fp32)."""
    return r.get("precision", "fp32")


def aux_flags(task: str, total: int) -> list[str]:
    """The transfer recipe's auxiliary data for `task`, as transfer_limited_data.aux_sets gives it, with `total`
    examples in all instead of its 20,000."""
    per_source = total // len(AUX[task])
    flags = []
    for i, source in enumerate(AUX[task]):
        flags += ["--aux", source, "--set", f"transfer.aux.{i}.max_examples={per_source}"]
    return flags


def cell_command(task: str, model: str, method: str, seed: int) -> list[str]:
    out = display(WORK / cell_name(task, model, method, seed))
    common = ["--task", task, "--max-train-examples", str(EXAMPLES), "--seed", str(seed), "--output", out, "--overwrite",
              *TABLE_SCHEDULE]
    if model == "mpnet":
        command = ["auxprune", "prune", "--model", "mpnet-base", "--size-of", "minilm", *common,
                   "--set", f"train.precision={MPNET_PRECISION}", *MPNET_SETS]
        if method == "aux_in_pruning":
            teacher = display(WORK / cell_name(task, model, "baseline", seed) / "teacher")
            command += ["--set", "transfer.teacher_aux_epochs=0", "--set", f"teacher.path={teacher}"]
        return command + (aux_flags(task, MPNET_AUX_EXAMPLES) if method != "baseline" else [])
    return (["auxprune", "prune", "--model", "minilm", "--sparsity", str(MINILM_SPARSITY), *common, *TABLE_PRECISION]
            + (aux_sets(task) if method == "transfer" else []))


def run_cell(task: str, model: str, method: str, seed: int, threads: int | None) -> tuple[dict, float, str]:
    """The cell's report, its wall time (the run's own when it finished earlier or resumed), its command."""
    out = WORK / cell_name(task, model, method, seed)
    command = cell_command(task, model, method, seed)
    report, wall, ran = run_prune(out, command, threads, out.name, resume_as=display(out))
    return report, wall if ran else report["timing"]["total"], shlex.join(command)


def record(task: str, model: str, method: str, seed: int, report: dict, wall: float, command: str) -> dict:
    m = report["metrics"]
    primary = m["primary"]
    untrained = m.get("untrained") or {}
    mpnet = model == "mpnet"
    return {"kind": "cell", "task": task, "model": model, "method": method, "seed": seed, "head": report["head"],
            "precision": cell_precision(model), "aux": AUX[task] if method != "baseline" else [],
            "aux_examples": (MPNET_AUX_EXAMPLES if mpnet else AUX_EXAMPLES) if method != "baseline" else 0,
            "shortened": (MPNET_SETS[1::2] + [f"train.precision={MPNET_PRECISION}"]
                          + ([f"aux examples {MPNET_AUX_EXAMPLES}"] if method != "baseline" else [])) if mpnet else [],
            "metric_name": primary, "teacher": m["teacher"][primary], "pruned": m["pruned"][primary],
            "untrained": untrained.get(primary), "teacher_metrics": m["teacher"], "pruned_metrics": m["pruned"],
            "untrained_metrics": untrained or None, "params": report["params"], "target": report.get("target"),
            "measured_sparsity": report["sparsity"], "run_dir": display(WORK / cell_name(task, model, method, seed)),
            "warnings": report.get("warnings", []), "wall_s": wall, "timing_s": report["timing"], "command": command}


def key(r: dict) -> tuple:
    if r["kind"] == "cell":
        return "cell", r["task"], r["model"], r["method"], r["seed"], precision_of(r)
    return "latency", r["model_dir"], r["runtime"], r["threads"]


def write(row: dict, command: str) -> None:
    """Add one record to the results file (runners may work side by side)."""
    add_record(RESULTS, row, command, key, {
        "protocol": "RTE, MRPC, STS-B; 1,000 target training examples (stratified, seed), full dev set; quick preset "
                    "with 6 pruning epochs (bench/prune_cell.py TABLE_SCHEDULE), "
                    f"MiniLM-L6 fp32, MPNet-base {MPNET_PRECISION}, "
                    "model.head=auto (the bi-encoder for both models); MPNet-base (all-mpnet-base-v2) pruned "
                    "with --size-of minilm (MiniLM-L6's encoder-layer parameters), baseline and --aux (the transfer "
                    "benchmark's auxiliary data); MiniLM-L6 rows: the teachers of MiniLM sparsity-0.6 runs "
                    "(bench/results/bi_encoder.json where it has the cell, else run here with the same command); "
                    f"shortened: {SHORTENED}; latency: p50 of random-token batches without padding at "
                    f"{', '.join(SHAPES)}, torch eager and fp32 onnxruntime, one model at a time",
        "machine": machine(),
        "note": "wall_s was measured on 2 cores shared with other work: compare metrics, not times",
    })


def records() -> list[dict]:
    return json.loads(RESULTS.read_text()).get("records", []) if RESULTS.is_file() else []


def recorded() -> set[tuple]:
    return {key(r) for r in records()}


def bi_encoder_minilm() -> dict[tuple, dict]:
    """MiniLM-L6 cells of bench/results/bi_encoder.json at sparsity 0.6, as this script's records, by (task, method, seed);
    where a task, method and seed has no 0.6 cell, a cell at another sparsity that trained its own teacher (the rows
    read its dense teacher and dense parameter counts only, which the sparsity does not change)."""
    if not BI_RESULTS.is_file():
        return {}
    found = {}
    records = json.loads(BI_RESULTS.read_text()).get("records", [])
    own_teacher = [r for r in records if r["sparsity"] != MINILM_SPARSITY and r.get("teacher_from") == "trained in this run"]
    for r in [r for r in records if r["sparsity"] == MINILM_SPARSITY] + own_teacher:
        if r["task"] in TASKS and r["method"] in METHODS and (r["task"], r["method"], r["seed"]) not in found:
            run = BI_WORK / bi_encoder.cell_name(r["task"], r["sparsity"], r["method"], r["seed"])
            report = run / "report.json"
            params = json.loads(report.read_text())["params"] if report.is_file() else None
            found[(r["task"], r["method"], r["seed"])] = {
                "kind": "cell", "task": r["task"], "model": "minilm", "method": r["method"], "seed": r["seed"],
                "head": r.get("head"), "metric_name": r["metric_name"], "teacher": r["teacher"], "pruned": r["pruned"],
                "untrained": r.get("untrained"), "params": params, "run_dir": display(run),
                "source": display(BI_RESULTS), "command": r["command"]}
    return found


def minilm_cells(own: list[dict]) -> dict[tuple, dict]:
    """The MiniLM-L6 cells by (task, method, seed): bi_encoder.json's, else those run here."""
    cells = {(r["task"], r["method"], r["seed"]): r for r in own if r["kind"] == "cell" and r["model"] == "minilm"}
    return {**cells, **bi_encoder_minilm()}


# ------------------------------------------------------------------------------------------ latency

def latency_models(tasks: list[str], seeds: list[int]) -> list[tuple[str, int, str, Path]]:
    """(task, seed, row, model folder) for every row model that exists: the dense MiniLM-L6 (its baseline
    cell's teacher, here or in bench/work/bi_encoder/), the dense MPNet-base and each pruned MPNet model
    (baseline, --aux, aux_in_pruning, and bench/bi_recipe.py's RECIPE_ROWS). The rows of the same architecture
    (SAME_AS) take these latencies."""
    found = []
    for seed in seeds:
        for task in tasks:
            candidates = {
                "minilm_dense": [WORK / cell_name(task, "minilm", "baseline", seed) / "teacher",
                                 BI_WORK / bi_encoder.cell_name(task, MINILM_SPARSITY, "baseline", seed) / "teacher"],
                "mpnet_dense": [WORK / cell_name(task, "mpnet", "baseline", seed) / "teacher"],
                "mpnet_pruned": [WORK / cell_name(task, "mpnet", "baseline", seed) / "model"],
                "mpnet_pruned_transfer": [WORK / cell_name(task, "mpnet", "transfer", seed) / "model"],
                "mpnet_pruned_aux_in_pruning": [WORK / cell_name(task, "mpnet", "aux_in_pruning", seed) / "model"],
                **{row: [ROOT / r["run_dir"] / "model"] for r in recipe_cells(task) if r["seed"] == seed
                   for row in [row_of(r)]},
            }
            for row, paths in candidates.items():
                path = next((p for p in paths if (p / "config.json").is_file()), None)
                if path is not None:
                    found.append((task, seed, row, path))
    return found


def measure_latency(model_dir: Path, runtime: str, onnx_dir: Path, threads: int, warmup: int, iterations: int,
                    min_time: float) -> dict:
    """p50 (and the rest of `summarize`) per shape of one model folder under one runtime, alone in this process."""
    import torch

    from deploy import latency_per_shape  # bench/deploy.py: the same runners and timing loop

    torch.set_num_threads(threads)
    extra: dict = {}
    target = None
    if runtime != "torch":
        from auxprune.export import export_onnx

        onnx_dir.mkdir(parents=True, exist_ok=True)
        target = onnx_dir / "fp32.onnx"
        extra["check"] = {"max_abs_diff": export_onnx(model_dir, target)["max_abs_diff"]}
    latency = latency_per_shape(model_dir, target, SHAPES, threads, warmup, iterations, min_time)
    return {"latency": latency, "latency_ms_p50": {s: v["latency_ms_p50"] for s, v in latency.items()}, **extra}


def run_latency(args, command: str) -> None:
    import torch

    threads = args.threads or torch.get_num_threads()
    done = recorded()
    for task, seed, row, path in latency_models(args.tasks, args.seeds):
        if args.rows and row not in args.rows:
            continue
        for runtime in RUNTIMES:
            k = ("latency", display(path), runtime, threads)
            if k in done:
                print(f"[skip] {row} {task} seed {seed} {runtime}: in {RESULTS.name}", flush=True)
                continue
            onnx_dir = WORK / "onnx" / f"{path.parent.name}_{path.name}"
            result = measure_latency(path, runtime, onnx_dir, threads, args.warmup, args.iterations, args.min_time)
            write({"kind": "latency", "task": task, "seed": seed, "row": row, "model_dir": k[1], "runtime": runtime,
                   "threads": threads, "precision": "fp32", **result, "command": command}, command)
            p50 = ", ".join(f"{s} {v:.1f} ms" for s, v in result["latency_ms_p50"].items())
            print(f"[done] {row} {task} seed {seed} {runtime}: {p50}", flush=True)


# ------------------------------------------------------------------------------------------ table

def mpnet_cells(own: list[dict], task: str, same_precision: bool = True) -> list[dict]:
    """The task's MPNet cells in MPNET_PRECISION (the table's), or in any other (`same_precision=False`)."""
    return [r for r in own if r["kind"] == "cell" and r["model"] == "mpnet" and r["task"] == task
            and (precision_of(r) == MPNET_PRECISION) == same_precision]


def recipe_cells(task: str) -> list[dict]:
    """bench/bi_recipe.py's MPNet cells of the RECIPE_ROWS variants on `task` in MPNET_PRECISION, each with its run
    folder (`run_dir`, from its command's --output)."""
    if not RECIPE_RESULTS.is_file():
        return []
    cells = []
    for r in json.loads(RECIPE_RESULTS.read_text())["records"]:
        if (r.get("model") == "mpnet" and r["task"] == task and r["variant"] in RECIPE_ROWS.values()
                and precision_of(r) == MPNET_PRECISION):
            argv = shlex.split(r["command"])
            cells.append({**r, "run_dir": argv[argv.index("--output") + 1]})
    return sorted(cells, key=lambda r: r["seed"])


def row_of(recipe_cell: dict) -> str:
    return next(row for row, variant in RECIPE_ROWS.items() if variant == recipe_cell["variant"])


def row_values(task: str, own: list[dict], minilm: dict[tuple, dict]) -> dict[str, list[dict]]:
    """Per row, one entry per seed: {seed, metric, encoder, total}."""
    rows: dict[str, list[dict]] = {row: [] for row, _ in ROWS}
    for (t, method, seed), r in sorted(minilm.items(), key=lambda item: item[0][2]):
        if t != task:
            continue
        params = r.get("params")
        encoder = params["encoder_total"] if params else MINILM_PARAMS["encoder"]
        total = params["dense_total"] if params else MINILM_PARAMS["total"]
        rows["minilm_dense" if method == "baseline" else "minilm_transfer"].append(
            {"seed": seed, "metric": r["teacher"], "encoder": encoder, "total": total})
        if method == "baseline" and r.get("untrained") is not None:
            rows["minilm_untrained"].append({"seed": seed, "metric": r["untrained"], "encoder": encoder, "total": total})
    for r in sorted(peer.records(), key=lambda r: r["seed"]):  # the same 1,000 examples, fine-tuned by the peer tool
        if r["task"] == task:
            rows["minilm_peer"].append({"seed": r["seed"], "metric": r["fine_tuned"],
                                        "encoder": MINILM_PARAMS["encoder"], "total": MINILM_PARAMS["total"]})
    for r in sorted(mpnet_cells(own, task), key=lambda r: r["seed"]):
        p, seed = r["params"], r["seed"]
        dense = {"seed": seed, "encoder": p["encoder_total"], "total": p["dense_total"]}
        pruned = {"seed": seed, "metric": r["pruned"], "encoder": p["encoder_kept"], "total": p["total"]}
        if r["method"] == "baseline":
            rows["mpnet_dense"].append({**dense, "metric": r["teacher"]})
            rows["mpnet_pruned"].append(pruned)
            if r.get("untrained") is not None:
                rows["mpnet_untrained"].append({**dense, "metric": r["untrained"]})
        elif r["method"] == "transfer":
            rows["mpnet_dense_transfer"].append({**dense, "metric": r["teacher"]})
            rows["mpnet_pruned_transfer"].append(pruned)
        else:  # the baseline's teacher pruned with the auxiliary data: a pruned row only
            rows[f"mpnet_pruned_{r['method']}"].append(pruned)
    for r in recipe_cells(task):  # another recipe pruning the same teachers: pruned rows only
        p = r["params"]
        rows[row_of(r)].append({"seed": r["seed"], "metric": r["pruned"], "encoder": p["encoder_kept"], "total": p["total"]})
    return rows


def latency_records(task: str, own: list[dict]) -> list[dict]:
    """The task's latency records of the table's models (an MPNet cell of another precision is not one of its rows)."""
    other = tuple(r["run_dir"] + "/" for r in mpnet_cells(own, task, same_precision=False))
    return [r for r in own if r["kind"] == "latency" and r["task"] == task and not r["model_dir"].startswith(other)]


def latency_threads(task: str, own: list[dict]) -> int | None:
    """The thread count most of those records were timed at (a tie: the larger): the table's latencies are all at
    this count, never a mix."""
    counts = Counter(r["threads"] for r in latency_records(task, own))
    return max(counts, key=lambda threads: (counts[threads], threads)) if counts else None


def latencies(task: str, own: list[dict]) -> tuple[dict[str, dict[tuple[str, str], float]], list[str]]:
    """Per row, (runtime, shape) -> p50 ms, the mean over the seeds measured (at latency_threads); and the rows
    whose times come from other tasks' models."""
    threads = latency_threads(task, own)
    found = [r for r in latency_records(task, own) if r["threads"] == threads]
    measured_here = {r["row"] for r in found}
    # A dense model's architecture is the same whatever the task (a bi-encoder is timed as its encoder): where this
    # task's was not timed (its folder gone), the other tasks' times at the same thread count stand in.
    borrowed = [r for other in TASKS if other != task for r in latency_records(other, own)
                if r["row"] in TASK_INDEPENDENT and r["row"] not in measured_here and r["threads"] == threads]
    found += borrowed
    collected: dict[str, dict[tuple[str, str], list[float]]] = {}
    for r in found:
        for shape, ms in r["latency_ms_p50"].items():
            collected.setdefault(r["row"], {}).setdefault((r["runtime"], shape), []).append(ms)
    out = {row: {k: statistics.mean(v) for k, v in by.items()} for row, by in collected.items()}
    for row, twin in SAME_AS.items():
        if row not in out and twin in out:
            out[row] = out[twin]
    return out, sorted({r["row"] for r in borrowed})


def mean_sd(values: list[float]) -> str:
    if not values:
        return ""
    text = f"{100 * statistics.mean(values):.1f}"
    return text + (f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else "") + f" ({len(values)})"


def millions(values: list[int]) -> str:
    return f"{statistics.mean(values) / 1e6:.1f}M" if values else ""


def seed_count(n: int) -> str:
    return f"{n} seed" + ("s" if n != 1 else "")


def target_line(task: str, rows: dict[str, list[dict]], lat: dict[str, dict],
                ours_row: str = "mpnet_pruned_transfer") -> tuple[str, bool | None]:
    """Whether MPNet-base pruned + transfer (`ours_row`: the protocol's recipe or another TARGET_ROWS recipe) beats
    MiniLM-L6 dense + transfer at no more than its latency."""
    ours, theirs = rows[ours_row], rows["minilm_transfer"]
    recipe = f" ({TARGET_ROWS[ours_row]})" if TARGET_ROWS[ours_row] else ""
    task = task + recipe
    if not ours or not theirs:
        missing = [label for row, label in ROWS if row in (ours_row, "minilm_transfer") and not rows[row]]
        return f"- {task}: target not measured yet (missing: {', '.join(missing)})", None
    a, b = statistics.mean(e["metric"] for e in ours), statistics.mean(e["metric"] for e in theirs)
    better = a > b
    versus = (f"MPNet-base pruned + transfer {100 * a:.1f} ({seed_count(len(ours))}) vs MiniLM-L6 dense + transfer "
              f"{100 * b:.1f} ({seed_count(len(theirs))})")
    common = sorted(set(lat.get(ours_row, {})) & set(lat.get("minilm_transfer", {})))
    if not common:  # a lower metric fails the target whatever the latency; a higher one waits for it
        return (f"- {task}: target {'not measured yet' if better else 'not met'}: {versus}, "
                f"{'better' if better else 'not better'}; latency not measured"), (None if better else False)
    ratios = {k: lat[ours_row][k] / lat["minilm_transfer"][k] for k in common}
    faster = all(v <= 1.0 for v in ratios.values())
    met = better and faster
    return (f"- {task}: target {'met' if met else 'not met'}: {versus}; latency ratio "
            + ", ".join(f"{runtime} {shape} {v:.2f}x" for (runtime, shape), v in ratios.items())
            + f" ({'no more than' if faster else 'more than'} MiniLM-L6's)"), met


def scores(r: dict) -> str:
    return f"teacher {100 * r['teacher']:.1f}, pruned {100 * r['pruned']:.1f}"


def precision_checks(task: str, own: list[dict]) -> list[str]:
    """One line per MPNet cell of another precision, beside the table's cell of the same method and seed."""
    current = {(r["method"], r["seed"]): r for r in mpnet_cells(own, task)}
    lines = []
    for r in sorted(mpnet_cells(own, task, same_precision=False), key=lambda r: (r["method"], r["seed"])):
        twin = current.get((r["method"], r["seed"]))
        lines.append(f"- {task}: MPNet-base {r['method']} seed {r['seed']} in {precision_of(r)} (not in the table): "
                     f"{scores(r)}; in {MPNET_PRECISION}: " + (scores(twin) if twin else "not run yet"))
    return lines


def table(own: list[dict], minilm: dict[tuple, dict]) -> str:
    lat_columns = [(runtime, shape) for runtime in RUNTIMES for shape in SHAPES]
    lines = ["| task | model | metric (x100) | encoder params | total params | "
             + " | ".join(f"{'ort' if runtime == 'onnxruntime' else runtime} {shape} p50 ms" for runtime, shape in lat_columns)
             + " |", "|---|---|---|---|---|" + "---|" * len(lat_columns)]
    notes, verdicts = [], {row: [] for row in TARGET_ROWS}
    for task in TASKS:
        rows = row_values(task, own, minilm)
        if not any(rows.values()):
            continue
        lat, borrowed = latencies(task, own)
        metric = next((r["metric_name"] for r in [*own, *minilm.values()] if r["kind"] == "cell" and r["task"] == task), "")
        for row, label in ROWS:
            if row in ON_REQUEST_ROWS and not rows[row]:
                continue
            entries = rows[row] or rows.get(SAME_AS.get(row, ""), [])
            metrics = [e["metric"] for e in rows[row]]
            lines.append(f"| {task} ({metric}) | {label} | {mean_sd(metrics)} | {millions([e['encoder'] for e in entries])} "
                         f"| {millions([e['total'] for e in entries])} | "
                         + " | ".join(f"{lat[row][c]:.1f}" if c in lat.get(row, {}) else "" for c in lat_columns) + " |")
        for ours_row in TARGET_ROWS:
            if ours_row in ON_REQUEST_ROWS and not rows[ours_row]:
                continue
            note, met = target_line(task, rows, lat, ours_row)
            notes.append(note)
            verdicts[ours_row].append(met)
        if lat:
            labels = [label for row, label in ROWS if row in borrowed]
            notes.append(f"- {task}: latency on {latency_threads(task, own)} thread(s), one model at a time"
                         + (f"; {' and '.join(labels)}: timed on another task's model of the same architecture"
                            if labels else ""))
        notes += precision_checks(task, own)
    overall = []
    for ours_row, recipe in TARGET_ROWS.items():
        met = verdicts[ours_row]
        if ours_row in ON_REQUEST_ROWS and not met:
            continue
        if len(met) == len(TASKS) and all(v is True for v in met):
            verdict = "met on all three pairs"
        elif any(v is False for v in met):
            verdict = "not met"
        else:
            verdict = "not measured on all three pairs yet"
        overall.append(f"- target (all three pairs{', ' + recipe if recipe else ''}): {verdict}")
    return "\n".join(lines + [""] + notes + overall)


# ------------------------------------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS + EXTRA_METHODS,
                        help="aux_in_pruning: MPNet only, after its baseline cell (see EXTRA_METHODS)")
    parser.add_argument("--threads", type=int, help="torch threads per cell (and for latency); all cores when empty")
    parser.add_argument("--latency", action="store_true", help="measure the latency of the models that exist, train nothing")
    parser.add_argument("--rows", nargs="+", choices=[row for row, _ in ROWS if row not in SAME_AS],
                        help="--latency: these rows' models only (e.g. the pruned ones, when the dense models' "
                             "architecture was timed on another task)")
    parser.add_argument("--warmup", type=int, default=3, help="--latency: warm-up calls per model and shape")
    parser.add_argument("--iterations", type=int, default=20, help="--latency: timed calls per model and shape (at least)")
    parser.add_argument("--min-time", type=float, default=2.0, help="--latency: keep timing for this many seconds")
    parser.add_argument("--table", action="store_true", help="print the README table, run nothing")
    args = parser.parse_args()
    if args.table:
        own = records()
        print(table(own, minilm_cells(own)))
        return
    command = shlex.join(["python", "bench/size_matched.py", *sys.argv[1:]])
    WORK.mkdir(parents=True, exist_ok=True)
    if args.latency:
        run_latency(args, command)
        return
    for seed in args.seeds:
        for task in args.tasks:
            for model in ("mpnet", "minilm"):
                for method in args.methods:
                    name = cell_name(task, model, method, seed)
                    if method in EXTRA_METHODS and model != "mpnet":
                        continue
                    if method == "aux_in_pruning" and not (WORK / cell_name(task, model, "baseline", seed) / "teacher"
                                                           / "config.json").is_file():
                        print(f"[wait] {name}: needs {cell_name(task, model, 'baseline', seed)}'s teacher first",
                              flush=True)
                        continue
                    if ("cell", task, model, method, seed, cell_precision(model)) in recorded():
                        print(f"[skip] {name}: in {RESULTS.name}", flush=True)
                        continue
                    if model == "minilm" and (task, method, seed) in bi_encoder_minilm():
                        print(f"[skip] {name}: in {BI_RESULTS.name}", flush=True)
                        continue
                    report, wall, cell_cmd = run_cell(task, model, method, seed, args.threads)
                    r = record(task, model, method, seed, report, wall, cell_cmd)
                    r["threads"] = args.threads
                    write(r, command)
                    print(f"[done] {name}: teacher {r['teacher']:.4f} pruned {r['pruned']:.4f} "
                          f"untrained {r['untrained']} ({r['wall_s']:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
