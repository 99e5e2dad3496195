"""The `prune` job: teacher, pruning with distillation, surgery, fine-tuning, evaluation, outputs."""

from __future__ import annotations

import copy
import dataclasses
import random
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from auxprune import distributed
from auxprune.baselines import (THRESHOLD_FIT_EXAMPLES, distinct_first_sentences, embedding_spread, fit_threshold,
                                is_sentence_embedding_model, pair_cosines, untrained_cosine_score)
from auxprune.checkpoint import Checkpoint, Checkpointer, LoopState, StopRequest, Value, restore_continuation
from auxprune.config import RunConfig, to_yaml
from auxprune.data.batching import encode, make_loader
from auxprune.data.metrics import constant_baseline
from auxprune.data.tasks import TaskData, load_task, subsample
from auxprune.distill import teacher_layers
from auxprune.errors import CannotResume, UserError
from auxprune.losses import inputs as model_inputs
from auxprune.model.loading import (load_for_task, load_pretrained, load_tokenizer, model_config, read_json,
                                    read_state_dict, resolve_model_path)
from auxprune.model_card import write_model_card
from auxprune.phases import Phase, run_phases
from auxprune.output import atomic_write_text, check_output_dir, plot_structure, prepare_output_dir, save_model, structure_summary, write_json
from auxprune.precision import choose_precision, faster_precision_hint, make_accelerator, precision_warnings
from auxprune.pruners import PRUNERS, PrunerFactory
from auxprune.sanity import check_reference_score, check_reference_speed, check_results, check_spread, check_training_set
from auxprune.sparsity import count_parameters, dense_encoder_params, encoder_params, fewest_encoder_params
from auxprune.speed import fitted_inputs, size_reference, time_alternating, torch_runner
from auxprune.structure import Dims
from auxprune.summary import print_warnings
from auxprune.surgery import cut, cut_agreement
from auxprune.teacher_outputs import MB, TeacherOutputs, estimated_bytes
from auxprune.train import (PruneResult, RunLog, epoch_batches, evaluate, fine_tune, fine_tune_aux, prune,
                            prune_aux, steps_for)
from auxprune.transfer import stage1_store
from auxprune.transfer.branch import AuxBranch
from auxprune.transfer.schedule import Schedule
from auxprune.transfer.sequential import StageOne
from auxprune.transfer.sources import load_aux_tasks


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_data(config: RunConfig) -> tuple[TaskData, dict[str, float]]:
    """The task with its training set limited as configured, and the constant predictor's dev score."""
    d = config.data
    data = load_task(d.task, d.data_dir, train_file=d.train_file, dev_file=d.dev_file, text_columns=d.text_columns,
                     label_column=d.label_column, label_map=d.label_map, kind=d.kind)
    full_train = data.train
    data.train_available = len(full_train)
    stratify = data.spec.kind == "classification"
    data.train = subsample(data.train, d.max_train_examples, config.seed, stratify)
    data.dev = subsample(data.dev, d.max_dev_examples, 0, stratify)
    return data, constant_baseline(data.spec, full_train, data.dev)


class Timer:
    """Seconds per phase and in total, carried over from the checkpoint a run resumes from."""

    def __init__(self, seconds: dict[str, float] | None = None):
        self.seconds = dict(seconds or {})
        self._total_before = self.seconds.pop("total", 0.0)
        self._started = time.perf_counter()
        self._current: tuple[str, float] | None = None

    @contextmanager
    def phase(self, name: str):
        self._current = (name, time.perf_counter())
        try:
            yield
        finally:
            self.seconds = self.snapshot()
            self.seconds.pop("total")
            self._current = None

    def snapshot(self) -> dict[str, float]:
        now = time.perf_counter()
        seconds = dict(self.seconds)
        if self._current is not None:
            name, start = self._current
            seconds[name] = seconds.get(name, 0.0) + now - start
        seconds["total"] = self._total_before + now - self._started
        return {k: round(v, 2) for k, v in seconds.items()}


def run_prune(config: RunConfig, output: Path, overwrite: bool = False, resume: bool = False,
              pruner: PrunerFactory | None = None) -> dict:
    """Run the whole job and write its outputs under `output`; returns the report.

    With `resume`, `output` is an earlier run of this config: it continues from its newest
    checkpoint (or from the start when it has none) and ends exactly as an uninterrupted run would.
    `pruner` makes the pruning method (default: hard-concrete gates with the Lagrangian controller).
    """
    pruner = pruner or PRUNERS["hard_concrete"]
    # `auto` becomes what this machine trains in; the saved config.yaml holds that, so a resume continues in it
    precision, precision_why = choose_precision(config.train.precision)
    config = config.model_copy(update={"train": config.train.model_copy(update={"precision": precision})})
    checkpoints = Checkpointer(output, config.train.checkpoint_every, config.train.keep_checkpoints)
    latest = checkpoints.latest() if resume else None
    if not resume:
        check_output_dir(output, overwrite)  # refuse early; the folder is made once the inputs are known good
    processes, main = distributed.processes(), distributed.is_main()
    check_processes(config, output, latest, processes)
    seed_everything(config.seed)
    saved = {latest.phase: latest.load()} if latest else {}
    timer = Timer(latest.meta.get("timing") if latest else None)
    if latest is not None and latest.meta.get("precision", "fp32") != config.train.precision:
        raise UserError(f"{output}: its checkpoint was trained in {latest.meta.get('precision', 'fp32')}, the run's "
                        f"config says train.precision={config.train.precision}; resume with the precision it started with")
    accelerator = make_accelerator(config.train.precision)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    # Reading the data and the model first: a bad input is refused before anything is written.
    with timer.phase("load"):
        data, constant = load_data(config)
        spec = data.spec
        head = resolve_head(config, data)
        teacher, tokenizer, pooling = load_pretrained(config.teacher.path or config.model.name, num_labels=spec.num_labels,
                                                      pooling=config.model.pooling, task=spec.name, labels=spec.labels,
                                                      max_seq_len=config.model.max_seq_len, head=head["head"],
                                                      pair_classifier=head["pair_classifier"] or "cosine",
                                                      label_range=head["label_range"])
        size = size_target(config, teacher)  # sets prune.target_sparsity when a size was asked for
        check_speed_reference(config)  # a typo is refused now, not after an hour of training
        teacher.to(accelerator.device)
        tokenizer.model_max_length = config.model.max_seq_len  # saved with the models: truncation matches training
        pad = tokenizer.pad_token_id or 0
        separate = head["head"] == "bi"
        train_items = encode(data.train, tokenizer, config.model.max_seq_len, separate)
        train_loader = make_loader(train_items, config.train.batch_size, pad, shuffle=True, seed=config.seed)
        dev_loader = make_loader(encode(data.dev, tokenizer, config.model.max_seq_len, separate),
                                 config.train.eval_batch_size, pad, shuffle=False)
        dev_labels = [e.label for e in data.dev]
        warnings = check_training_set(data.train, spec, config.data.train_file or config.data.task, data.train_available)
        warnings += precision_warnings(config.train.precision)
        if main:
            print_warnings(warnings)
        aux = build_aux(config, data, tokenizer, teacher, train_loader)
        # What stage 1 depends on; None: this run has no stage 1 (the job's phases follow this)
        epochs = stage1_epochs(config)
        stage1_inputs = stage1_store.trained_with(config, head["head"], aux, epochs, processes) \
            if aux is not None and epochs > 0 else None
        stage1_source = None
        if config.transfer.stage1_from and checkpoints.record(stage1_store.PHASE) is None:
            stage1_source = stage1_store.find(config.transfer.stage1_from)
            stage1_store.check(stage1_source, stage1_inputs)
            if not resume and Path(output).resolve() in stage1_source.path.resolve().parents:
                raise UserError(f"transfer.stage1_from: {stage1_source.path} is inside {output}, which this run "
                                "replaces; write the run to another folder")
    # Dev scores a resumed run's first part already measured, from its checkpoint's metadata: minutes for a
    # base-size model, and the same numbers again (the untrained model and the finished teacher do not change).
    known = latest.meta.get("known", {}) if latest else {}
    with timer.phase("untrained"):
        # Each bar is one pass over the dev set: the main process computes it and the others receive it.
        untrained = known["untrained"] if "untrained" in known else distributed.from_main(
            lambda: untrained_score(config, data, teacher if config.teacher.path is None else None, accelerator))
        reference_score = known["reference_score"] if "reference_score" in known else distributed.from_main(
            lambda: reference_as_is_score(config, data, accelerator))
        if config.teacher.path is None and teacher.is_bi_encoder and teacher.classifier.kind == "cosine":
            head["threshold"] = init_cosine_threshold(teacher, tokenizer, data, untrained, config.model.max_seq_len)
    if not resume and main:  # the main process alone writes the run folder
        prepare_output_dir(output, overwrite)
        atomic_write_text(output / "config.yaml", to_yaml(config))
    log = RunLog(output / "log.jsonl" if main else None)
    if resume:  # without a checkpoint the run starts over in the same folder
        log.write(event="resumed", phase=latest and latest.phase, step=latest.step if latest else 0,
                  checkpoint=latest and latest.path.name)
    stop = StopRequest()

    def loop_state(phase: str) -> LoopState:
        meta = lambda: {"timing": timer.snapshot(), "precision": config.train.precision, "processes": processes,  # noqa: E731
                        "known": {"untrained": untrained, "reference_score": reference_score,
                                  **({"teacher_metrics": job.teacher_metrics} if job.teacher_metrics else {})}}
        return LoopState(phase, checkpoints, saved.get(phase), stop, meta=meta)

    job = PruneJob(config, output, accelerator, log, pruner, teacher, tokenizer, train_loader, dev_loader, dev_labels,
                   spec, aux, known.get("teacher_metrics"), stage1_inputs, stage1_source)
    continuation = {"sampler": train_loader.batch_sampler, **({"aux": aux} if aux is not None else {})}
    try:
        run_phases(job.phases(), checkpoints=checkpoints, latest=latest, loop_state=loop_state,
                   continuation=continuation, timer=timer, stop=stop)
        teacher, small, masks, result = job.teacher, job.small, job.masks, job.result
        with timer.phase("save"):
            if main:
                save_model(small, tokenizer, output / "model")
                plot_structure(small.config, output / "structure.png",
                               f"{spec.name}: sparsity {masks.sparsity():.3f} (target {config.prune.target_sparsity})")
        spread = None
        if head["head"] == "bi" and main:  # does the pruned bi-encoder still tell different sentences apart?
            with timer.phase("eval"):
                encoders = {"pruned": small.encoder, "teacher": accelerator.unwrap_model(teacher).encoder}
                spread = embedding_spread(encoders, tokenizer, distinct_first_sentences(data.dev), config.model.max_seq_len)
        timing = timer.snapshot()
        warnings += check_results(spec.primary_metric, job.teacher_metrics, job.pruned_metrics, constant, untrained,
                                  head["head"], with_aux=bool(config.transfer.aux),
                                  teacher_lr=None if config.teacher.path else config.teacher.lr,
                                  train_sizes=(len(data.train), data.train_available))
        warnings += check_spread(spread, with_aux=bool(config.transfer.aux), families=tuple(config.prune.families))
        warnings += check_reference_speed(job.speed, families=tuple(config.prune.families))
        warnings += check_reference_score(spec.primary_metric, job.pruned_metrics, reference_score,
                                          sized_to=sized_to_reference(config))
        report = build_report(config, spec, teacher, small, masks, result, job.teacher_metrics, job.pruned_metrics,
                              constant, job.speed, timing, len(data.train), len(data.dev), data.train_available)
        report["metrics"]["untrained"] = untrained["metrics"] if untrained else None
        report["untrained"] = untrained
        if reference_score is not None:
            report["metrics"]["reference_as_is"] = reference_score["metrics"]
            report["reference_score"] = reference_score
        report["precision_why"] = precision_why
        report["precision_hint"] = faster_precision_hint(precision)
        report["schedule"] = schedule_report(config, len(data.train), train_loader)
        report["head"] = head
        if job.cut_check is not None:  # None when a resumed run restored the cut model
            report["cut_check"] = job.cut_check
        if spread is not None:
            report["embedding_spread"] = spread
        if (plan := job.teacher_outputs_plan()) is not None:
            report["distillation"]["teacher_outputs"] = plan
        report["warnings"] = warnings
        report["model"] = {"name": config.teacher.path or config.model.name, "pooling": pooling.as_dict()}
        if size is not None:
            report["target"] = size
        if aux is not None:
            report["transfer"] = transfer_report(config, aux, job.aux_metrics)
        if resume:
            report["resumed_from"] = {"phase": latest.phase, "step": latest.step} if latest else {"phase": None, "step": 0}
        if main:
            write_json(output / "report.json", report)
            write_model_card(output / "model", report)  # model/README.md, from the report
            if config.transfer.stage1_from is None:  # stage 1 trained here: kept for other runs to start from
                stage1_store.keep(checkpoints, output)
            checkpoints.clear()  # the outputs are complete; checkpoints would only fill the disk
        return report
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        last = checkpoints.latest()
        try:
            if main:
                write_json(output / "report.json", {"status": status, "task": config.data.task, "error": f"{type(err).__name__}: {err}",
                                                    "checkpoint": str(last.path) if last else None,
                                                    "timing": timer.snapshot(), "config": config.model_dump(mode="json")})
        except OSError:
            pass  # e.g. the disk is full: the error itself matters more than its record
        if isinstance(err, UserError) and not isinstance(err, CannotResume) and last is not None:
            raise UserError(f"{err} (work so far is kept: resume=True continues {output})") from err
        raise
    finally:
        log.close()


class PruneJob:
    """The prune job's phases (`phases()`) and what they hand to each other.

    | phase | does | its record (see `phases.py`) |
    |---|---|---|
    | stage1 | trains the encoder on the auxiliary tasks (transfer) | the model's weights, what stage 2 ties to, aux dev metrics |
    | teacher | fine-tunes the dense teacher | none besides the `teacher/` folder it writes |
    | eval_teacher | the teacher's dev metrics | read from the checkpoint's metadata when it has them, else recomputed |
    | prune | gates and weights under the sparsity constraint | the student, the pruner, its summary |
    | cut | the final structure and the smaller model | recomputed |
    | finetune | fine-tunes the cut model | its weights |
    | eval | the pruned model's dev metrics and latency | recomputed |
    """

    def __init__(self, config: RunConfig, output: Path, accelerator: Accelerator, log: RunLog, pruner: PrunerFactory,
                 teacher, tokenizer, train_loader, dev_loader, dev_labels: list, spec, aux: AuxBranch | None,
                 known_teacher_metrics: dict | None = None, stage1_inputs: dict | None = None,
                 stage1_source: Checkpoint | None = None):
        self.config, self.output, self.accelerator, self.log, self.pruner = config, output, accelerator, log, pruner
        self.teacher, self.tokenizer, self.spec, self.aux = teacher, tokenizer, spec, aux
        self.train_loader, self.dev_loader, self.dev_labels = train_loader, dev_loader, dev_labels
        self.joint = aux if config.transfer.how == "joint" else None
        self.stage1: StageOne | None = None
        self.aux_metrics: dict = {}
        self.pruned_metrics = self.speed = None
        self.teacher_metrics = known_teacher_metrics  # measured before the checkpoint this run resumes from, or None
        self.student = self.result = self.masks = self.small = None
        self.cut_check: dict | None = None  # the cut model against the gated student on one dev batch (cut_student)
        self.cached_teacher: TeacherOutputs | None = None
        # What stage 1 depends on (written beside its record; None: no stage 1), and the other run's stage 1 it
        # restores instead
        self.stage1_inputs, self.stage1_source = stage1_inputs, stage1_source

    def phases(self) -> list[Phase]:
        phases = []
        if self.stage1_inputs is not None:
            # Sequential stage 1 / intermediate-task teacher: the encoder learns the auxiliary
            # tasks first, and the target's teacher (hence the student) starts from it.
            epochs = self.stage1_inputs["epochs"]
            run = self.reuse_stage1 if self.stage1_source is not None else lambda state: self.run_stage1(epochs, state)
            phases.append(Phase(stage1_store.PHASE, run, self.stage1_outcome, self.restore_stage1, meta=self.stage1_meta))
        if self.config.teacher.path is None:
            phases.append(Phase("teacher", self.train_teacher, dict, self.restore_teacher))
        phases += [Phase("eval_teacher", self.evaluate_teacher, timer="eval"),
                   Phase("prune", self.prune_student, self.prune_outcome, self.restore_prune),
                   Phase("cut", self.cut_student, timer="prune")]
        if self.config.finetune.epochs > 0:
            phases.append(Phase("finetune", self.fine_tune_small, lambda: {"model": self.small},
                                lambda saved: self.small.load_state_dict(saved["model"])))
        return [*phases, Phase("eval", self.evaluate)]

    def run_stage1(self, epochs: float, state: LoopState) -> None:
        self.stage1, metrics = run_stage1(self.teacher, self.aux, epochs, self.config, self.accelerator, self.log, state,
                                          self.pruner)
        self.aux_metrics.update(metrics)

    def stage1_outcome(self) -> dict:
        return {"model": self.teacher, "stage1": Value(dataclasses.asdict(self.stage1) if self.stage1 else None),
                "metrics": Value(dict(self.aux_metrics))}

    def stage1_meta(self) -> dict:
        return {"trained_with": self.stage1_inputs,
                **({"from": str(self.stage1_source.path)} if self.stage1_source is not None else {})}

    def reuse_stage1(self, state: LoopState) -> None:
        """Stage 1 as another run left it (transfer.stage1_from): its encoder, the auxiliary heads and streams,
        and the random state, so that on the same target this run continues exactly as that one did."""
        saved = self.stage1_source.load()
        self.restore_stage1(saved["outcome"], encoder_only=True)
        restore_continuation({"aux": self.aux}, {"aux": saved["continuation"]["aux"]}, saved)

    def restore_stage1(self, saved: dict, encoder_only: bool = False) -> None:
        if encoder_only:  # the target's head stays this run's own: stage 1 never trains it, and the target may differ
            prefix = next(name for name, module in self.teacher.named_children() if module is self.teacher.encoder)
            self.teacher.encoder.load_state_dict({key[len(prefix) + 1:]: value for key, value in saved["model"].items()
                                                  if key.startswith(prefix + ".")})
        else:
            self.teacher.load_state_dict(saved["model"])
        self.stage1 = StageOne(**saved["stage1"]) if saved["stage1"] is not None else None
        self.aux_metrics.update(saved["metrics"])

    def train_teacher(self, state: LoopState) -> None:
        c = self.config
        fine_tune(self.teacher, self.train_loader, epochs=c.teacher.epochs, lr=c.teacher.lr, config=c,
                  accelerator=self.accelerator, log=self.log, phase="teacher", state=state, aux=self.joint, tie=self.stage1)
        if distributed.is_main():
            save_model(self.accelerator.unwrap_model(self.teacher), self.tokenizer, self.output / "teacher")

    def restore_teacher(self, saved: dict) -> None:
        self.teacher.load_state_dict(read_state_dict(self.output / "teacher"))

    def evaluate_teacher(self, state: LoopState) -> None:
        self.teacher = self.accelerator.unwrap_model(self.teacher).eval()
        if self.teacher_metrics is not None:
            return
        self.teacher_metrics = evaluate(self.teacher, self.dev_loader, self.dev_labels, self.spec, self.accelerator,
                                        "eval teacher")

    def teacher_outputs_plan(self) -> dict | None:
        """For the report: whether distillation reads the teacher's outputs computed once (they fit in
        distill.teacher_cache_mb) or runs the teacher in every step, their size and the layers kept."""
        c = self.config
        if not c.distill.enabled:
            return None
        layers = teacher_layers(c, self.teacher)
        needed = estimated_bytes(self.train_loader.dataset, layers, self.teacher.config.hidden_size)
        fits = 0 < c.distill.teacher_cache_mb and needed <= c.distill.teacher_cache_mb * MB
        return {"computed_once": fits, "mb": round(needed / MB, 1), "layers": layers}

    def teacher_outputs(self) -> TeacherOutputs | None:
        """The finished teacher's outputs on the training set, computed at first use (pruning, or fine-tuning
        when a resumed run skips pruning); None when `teacher_outputs_plan` says the teacher runs every step."""
        if self.cached_teacher is not None:
            return self.cached_teacher
        plan = self.teacher_outputs_plan()
        if plan is not None and plan["computed_once"]:
            c = self.config
            self.cached_teacher = TeacherOutputs.compute(
                self.teacher, self.train_loader.dataset, layers=plan["layers"], batch_size=c.train.batch_size,
                pad_id=self.tokenizer.pad_token_id or 0, device=self.accelerator.device, autocast=self.accelerator.autocast)
        return self.cached_teacher

    def prune_student(self, state: LoopState) -> None:
        self.student = copy.deepcopy(self.teacher).train()  # the student starts as the fine-tuned teacher
        self.result = prune(self.student, self.teacher if self.config.distill.enabled else None, self.train_loader,
                            config=self.config, accelerator=self.accelerator, log=self.log, state=state, aux=self.joint,
                            stage1=self.stage1, pruner=self.pruner, teacher_outputs=self.teacher_outputs())

    def prune_outcome(self) -> dict:
        r = self.result
        summary = {"expected_sparsity": r.expected_sparsity, "stats": r.stats, "layer_matches": r.layer_matches}
        return {"student": self.student, "pruner": r.pruner, "summary": Value(summary)}

    def restore_prune(self, saved: dict) -> None:
        self.student = copy.deepcopy(self.teacher).train()
        self.student.load_state_dict(saved["student"])
        steps = steps_for(self.config.prune.epochs, self.train_loader, self.config)
        pruner = self.pruner(Dims.of(self.student.config), self.config.prune, steps)
        pruner.load_state_dict(saved["pruner"])
        info = saved["summary"]
        self.result = PruneResult(pruner, info["expected_sparsity"], dict(info["stats"]), list(info["layer_matches"]))

    def cut_student(self, state: LoopState) -> None:
        p = self.config.prune
        self.masks = self.result.pruner.final_structure(p.target_sparsity, p.tolerance,
                                                        **({"align": p.align} if p.align > 1 else {}))
        student = self.accelerator.unwrap_model(self.student)
        self.small = cut(student, self.masks)
        # The dev loader's first batch, read with the global generator's state saved and restored, so that the
        # run's later random numbers cannot depend on this check (tests/test_cli.py checks the weights bit for bit).
        with torch.random.fork_rng(devices=[]):
            batch = model_inputs(next(iter(self.dev_loader)), self.accelerator.device)
        self.cut_check = cut_agreement(student, self.result.pruner.eval_gates(), self.small, self.masks, batch)
        if self.joint is not None:  # its heads read the kept hidden dimensions, as the cut model's head does
            self.joint.cut(self.masks, self.small.config.pooling)

    def fine_tune_small(self, state: LoopState) -> None:
        c = self.config
        fine_tune(self.small, self.train_loader, epochs=c.finetune.epochs, lr=c.finetune.lr, config=c,
                  accelerator=self.accelerator, log=self.log, phase="finetune", teacher=self.teacher, state=state,
                  aux=self.joint, teacher_outputs=self.teacher_outputs())

    def evaluate(self, state: LoopState) -> None:
        self.small = self.accelerator.unwrap_model(self.small).eval()
        self.pruned_metrics = evaluate(self.small, self.dev_loader, self.dev_labels, self.spec, self.accelerator,
                                       "eval pruned")
        if self.joint is not None:
            self.aux_metrics["pruned"] = self.joint.evaluate(self.small, self.accelerator.device)
        if distributed.is_main():
            self.speed = measure_speed(self.teacher, self.small, self.train_loader, self.accelerator,
                                       reference=speed_reference(self.config),
                                       sized_to=sized_to_reference(self.config))


def stage1_epochs(config: RunConfig) -> float:
    """Epochs of stage 1 over the auxiliary data: sequential transfer's first stage, else the teacher's
    intermediate-task training (0: none)."""
    t = config.transfer
    return t.stage1_epochs if t.how == "sequential" else t.teacher_aux_epochs


def run_stage1(model, aux: AuxBranch, epochs: float, config: RunConfig, accelerator: Accelerator, log: RunLog,
               state: LoopState, pruner: PrunerFactory | None = None) -> tuple[StageOne | None, dict]:
    """Train `model` on the auxiliary tasks alone (fine-tuning, or pruning for sequential stage1=prune).

    Returns what stage 2 needs besides the weights left in `model` (None when that is all), and
    the auxiliary dev metrics after stage 1 (and the expected sparsity of stage-1 pruning).
    """
    t = config.transfer
    sequential = t.how == "sequential"
    if sequential and t.stage1 == "prune":
        pretrained = copy.deepcopy(model.encoder.state_dict()) if t.what == "masks" else None
        gates = prune_aux(model, aux, epochs=epochs, lr=t.stage1_lr, config=config, accelerator=accelerator, log=log,
                          phase="stage1", state=state, pruner=pruner)
        with torch.no_grad():
            metrics = {"after_stage1": aux.evaluate(model, accelerator.device, gates.eval_gates()),
                       "stage1_expected_sparsity": float(gates.expected_sparsity())}
        outcome = StageOne.after(model, gates, t.what, t.share, t.tie_strength)
        if pretrained is not None:  # masks only: the target starts again from the pre-trained weights
            model.encoder.load_state_dict(pretrained)
        return outcome, metrics
    fine_tune_aux(model, aux, epochs=epochs, lr=t.stage1_lr, config=config, accelerator=accelerator, log=log,
                  phase="stage1", state=state)
    metrics = {"after_stage1": aux.evaluate(model, accelerator.device)}
    outcome = StageOne.after(model, None, t.what, t.share, t.tie_strength) if sequential and t.share == "tied" else None
    return outcome, metrics


def untrained_score(config: RunConfig, data: TaskData, pretrained, accelerator: Accelerator) -> dict | None:
    """The untrained model's own dev score on a pair task, for a sentence-embedding model (see
    `baselines`); None otherwise. `pretrained` is the freshly loaded model when there is one."""
    path = resolve_model_path(config.model.name)
    if not is_sentence_embedding_model(path) or data.train[0].text_b is None:
        return None
    return as_is_score(path, config.model.pooling, config, data, accelerator, pretrained)


def reference_as_is_score(config: RunConfig, data: TaskData, accelerator: Accelerator) -> dict | None:
    """The dev score of the model the pruned one is set beside (prune.speed_reference, else prune.size_of) used as
    it is, by the cosine of its sentence embeddings: when the user asked for a model that size, the one they
    could take without pruning anything. None without such a model, when it is no sentence-embedding model, on
    single-sentence tasks, or when it is the run's own model (whose bar is `untrained`)."""
    name = speed_reference(config)
    if name is None or data.train[0].text_b is None:
        return None
    folder, _ = model_config(name)
    if not is_sentence_embedding_model(folder) or folder.resolve() == resolve_model_path(config.model.name).resolve():
        return None
    score = as_is_score(folder, "auto", config, data, accelerator)  # its own pooling, not the run's setting
    return None if score is None else {"model": name, **score}


def as_is_score(path: Path, pooling: str, config: RunConfig, data: TaskData, accelerator: Accelerator,
                model=None) -> dict | None:
    """`untrained_cosine_score` of the sentence-embedding model in `path` (`model`: it, loaded already)."""
    # Loading draws a fresh head from the global generator: fork it, so that a run's random
    # draws are the same whether or not this bar is computed.
    with torch.random.fork_rng(devices=[]):
        if model is None:
            model, _ = load_for_task(path, num_labels=data.spec.num_labels, pooling=pooling,
                                     max_seq_len=config.model.max_seq_len)
            model.to(accelerator.device)
        tokenizer = load_tokenizer(path)
        return untrained_cosine_score(model.encoder, tokenizer, data.spec, data.train, data.dev, config.model.max_seq_len)


# What `model.head=auto` gives a sentence-embedding model on a pair task, measured (bench/results/bi_encoder.json,
# MiniLM-L6, 1,000 examples, seed 1): the bi-encoder's dense teacher beat the cross-encoder's on STS-B (Pearson
# 89.1 vs 82.3) and MRPC (accuracy 78.7 vs 73.8), and so did its models pruned to 0.6 (86.8 vs 79.3; 76.2 vs 74.5);
# checked off them on RTE: dense teacher 59.2 vs 57.0 (bench/results/bi_encoder_ablation.json).
# Other models keep the cross-encoder: a bi-encoder leans on pre-training for sentence embeddings.
AUTO_PAIR_HEAD = "bi"
AUTO_PAIR_HEAD_WHY = "the bi-encoder measured better than the cross-encoder on STS-B and MRPC (bench/results/bi_encoder.json)"


def resolve_head(config: RunConfig, data: TaskData) -> dict:
    """The task head (cross- or bi-encoder), its classifier and label range, and why (for the report)."""
    m = config.model
    pair_task = data.train[0].text_b is not None
    if m.head == "bi" and not pair_task:
        raise UserError(f"model.head=bi: {data.spec.name} has one text per example; a bi-encoder compares the two "
                        "sides of a sentence pair (expected a pair task, or model.head=cross)")
    if m.head != "auto":
        head, why = m.head, f"model.head={m.head}"
    elif config.teacher.path is not None:
        head, why = read_json(resolve_model_path(config.teacher.path) / "config.json").get("head", "cross"), \
            "the head of the given teacher (teacher.path)"
    elif pair_task and is_sentence_embedding_model(resolve_model_path(m.name)):
        head, why = AUTO_PAIR_HEAD, "a sentence-embedding model on a sentence-pair task: " + AUTO_PAIR_HEAD_WHY
    else:
        head, why = "cross", "one text per example" if not pair_task else "not a sentence-embedding model"
    classes = data.spec.num_labels
    classifier = m.pair_classifier if m.pair_classifier != "auto" else "cosine" if classes == 2 else "concat"
    if head == "bi" and classes > 2 and classifier == "cosine":
        raise UserError(f"model.pair_classifier=cosine gives two classes, {data.spec.name} has {classes}; "
                        "expected model.pair_classifier=concat (or auto)")
    label_range = None
    if head == "bi" and data.spec.kind == "regression":
        labels = [float(e.label) for e in data.train]
        if max(labels) == min(labels):
            raise UserError(f"{data.spec.name}: every training label is {labels[0]:g}; a regression needs varied scores")
        label_range = [min(labels), max(labels)]
    return {"head": head, "pair_classifier": classifier if head == "bi" and classes > 1 else None,
            "label_range": label_range, "why": why}


def init_cosine_threshold(model, tokenizer, data: TaskData, untrained: dict | None, max_len: int) -> float:
    """Start a bi-encoder's cosine classifier at the threshold that best separates the training pairs'
    cosines (the untrained bar's own fit when there is one), so that training starts from a sane rule."""
    if untrained is not None and "threshold" in untrained:
        threshold, above = float(untrained["threshold"]), bool(untrained["class1_above"])
    else:
        fit = list(data.train[:THRESHOLD_FIT_EXAMPLES])
        cosines = pair_cosines(model.encoder, tokenizer, fit, max_len, desc="cosine threshold")
        threshold, above = fit_threshold(cosines, np.array([e.label for e in fit]))
    with torch.no_grad():
        model.classifier.threshold.fill_(threshold)
        model.classifier.scale.mul_(1 if above else -1)
    return round(threshold, 6)


def size_target(config: RunConfig, model) -> dict | None:
    """With prune.target_params or prune.size_of: the encoder-layer parameter count asked for and the
    target sparsity it means for `model` (written to config.prune.target_sparsity), counted as the
    report counts (`sparsity.encoder_params`); None when the run asks for a sparsity."""
    p = config.prune
    if p.target_params is None and p.size_of is None:
        return None
    dense = dense_encoder_params(Dims.of(model.config))
    name = config.teacher.path or config.model.name
    if p.size_of is not None:
        try:
            folder, other = model_config(p.size_of)
        except UserError as err:
            raise UserError(f"prune.size_of: {err}") from err
        requested = encoder_params(other.layer_heads, other.layer_ffn, other.hidden_size, other.head_dim)
        field, why = f"prune.size_of {p.size_of}", f"the encoder layers of {folder} have {requested:,} parameters"
    else:
        requested = p.target_params
        field, why = f"prune.target_params {requested:,}", f"prune.target_params={requested}"
    if requested >= dense:
        raise UserError(f"{field}: {requested:,} encoder-layer parameters is not fewer than the {dense:,} of {name}; "
                        "expected a smaller target (or prune a larger model)")
    if requested < 1:
        raise UserError(f"{field}: that model has no encoder-layer parameters; expected a target of at least 1")
    fewest = fewest_encoder_params(Dims.of(model.config), p.families)
    if requested < fewest - p.tolerance * dense:
        raise UserError(f"{field}: gating only {', '.join(p.families)} leaves at least {fewest:,} of the {dense:,} "
                        f"encoder-layer parameters of {name}; expected a larger target or more prune.families")
    p.target_sparsity = 1.0 - requested / dense
    return {"requested_params": requested, "size_of": p.size_of, "encoder_total": dense,
            "target_sparsity": p.target_sparsity,
            "why": f"{why}: {requested:,} of {dense:,} encoder-layer parameters, target sparsity {p.target_sparsity:.4f}"}


def speed_reference(config: RunConfig) -> str | None:
    """The model the pruned one is timed beside: prune.speed_reference, else the model it was sized to."""
    return config.prune.speed_reference or config.prune.size_of


def sized_to_reference(config: RunConfig) -> bool:
    """Whether the run was pruned to the encoder size of the model it is set beside (the words its lines use)."""
    return speed_reference(config) is not None and speed_reference(config) == config.prune.size_of


def check_speed_reference(config: RunConfig) -> None:
    """prune.speed_reference must name a model the run can build (prune.size_of is checked by size_target)."""
    if config.prune.speed_reference is None:
        return
    try:
        model_config(config.prune.speed_reference)
    except UserError as err:
        raise UserError(f"prune.speed_reference: {err}") from err


def target_phase_steps(config: RunConfig, loader) -> dict[str, int]:
    """Optimizer steps of each target phase (0 for one that does not run), and of pruning's sparsity ramp."""
    prune_steps = steps_for(config.prune.epochs, loader, config)
    return {"teacher": steps_for(config.teacher.epochs, loader, config) if config.teacher.path is None else 0,
            "prune": prune_steps, "sparsity_ramp": int(config.prune.sparsity_warmup * prune_steps),
            "finetune": steps_for(config.finetune.epochs, loader, config) if config.finetune.epochs > 0 else 0}


def schedule_report(config: RunConfig, n_train: int, loader) -> dict:
    """Optimizer steps per target phase, and why: epochs over at least `train.min_epoch_examples`."""
    per_epoch = epoch_batches(loader, config)
    steps = target_phase_steps(config, loader)
    phases = {"teacher": {"epochs": config.teacher.epochs, "steps": steps["teacher"]} if config.teacher.path is None else None,
              "prune": {"epochs": config.prune.epochs, "steps": steps["prune"], "sparsity_ramp_steps": steps["sparsity_ramp"]},
              "finetune": {"epochs": config.finetune.epochs, "steps": steps["finetune"]}}
    minimum = config.train.min_epoch_examples
    if per_epoch > len(loader):
        why = (f"{n_train} training examples are fewer than train.min_epoch_examples={minimum}: each epoch goes "
               f"{per_epoch / len(loader):.1f} times round them ({per_epoch} steps, batch {config.train.batch_size})")
    else:
        why = f"plain epochs of {per_epoch} steps (batch {config.train.batch_size})"
    return {"batch_size": config.train.batch_size, "processes": distributed.processes(),
            "per_process_batch_size": config.train.batch_size // distributed.processes(),
            "batches_per_pass": len(loader), "steps_per_epoch": per_epoch,
            "min_epoch_examples": minimum, "phases": phases, "why": why}


def check_processes(config: RunConfig, output: Path, latest, processes: int) -> None:
    """Refuse, before anything is written, a run that `processes` processes cannot honour: a batch size
    that does not divide over them, or a checkpoint (`latest`) that another number of processes wrote
    (each process keeps its own random streams)."""
    sizes = {"train.batch_size": config.train.batch_size}
    if config.transfer.aux:
        sizes["transfer.aux_batch_size"] = config.transfer.aux_batch_size or config.train.batch_size
    distributed.check_batch_sizes(sizes, processes)
    if latest is not None and latest.meta.get("processes", 1) != processes:
        n = latest.meta.get("processes", 1)
        raise UserError(f"{output}: its checkpoint was written by {n} process(es), this run has {processes}; "
                        f"resume with --processes {n} (each process continues its own random streams)")


def build_aux(config: RunConfig, data: TaskData, tokenizer, model, train_loader) -> AuxBranch | None:
    """The auxiliary tasks and their schedule over this run's phases, or None without transfer."""
    t = config.transfer
    if not t.aux:
        return None
    if (t.how == "sequential" or t.teacher_aux_epochs > 0) and config.teacher.path is not None:
        what = "transfer.how=sequential" if t.how == "sequential" else "transfer.teacher_aux_epochs"
        raise UserError(f"{what} trains the encoder on the auxiliary tasks before the teacher; "
                        "it cannot start from a finished teacher (drop teacher.path)")
    if t.aux_distill_weight > 0 and not config.distill.enabled:
        raise UserError("transfer.aux_distill_weight distils the teacher on auxiliary inputs: it needs distill.enabled=true")
    tasks = load_aux_tasks(config, data, data.train, tokenizer, separate=model.is_bi_encoder)
    steps = target_phase_steps(config, train_loader)
    phase_steps = {"teacher": steps["teacher"], "warmup": steps["sparsity_ramp"],
                   "prune": steps["prune"] - steps["sparsity_ramp"], "finetune": steps["finetune"]}
    schedule = Schedule(t.when, t.weight, tuple(t.phases), phase_steps, tuple(t.window))
    return AuxBranch(tasks, model, schedule, tokenizer, seed=config.seed)


def transfer_report(config: RunConfig, aux: AuxBranch, metrics: dict) -> dict:
    t = config.transfer
    return {
        "aux": [{"name": a.name, "kind": a.kind, "train_examples": a.train_examples, "weight": a.weight,
                 **({"labels": list(a.spec.labels)} if a.spec is not None and a.kind == "classification" else {})}
                for a in aux.tasks],
        "how": t.how, "what": t.what, "share": t.share,
        "tie_strength": t.tie_strength if t.share == "tied" else None,
        "when": None if t.how != "joint" else {"shape": t.when, "weight": t.weight, "phases": list(t.phases),
                 "window": list(t.window) if t.when == "window" else None, "phase_steps": dict(aux.schedule.phase_steps)},
        "stage1": t.stage1 if t.how == "sequential" else None,
        "stage1_epochs": t.stage1_epochs if t.how == "sequential" else None,
        "teacher_aux_epochs": t.teacher_aux_epochs or None,
        "aux_distill_weight": t.aux_distill_weight or None,
        "aux_distill_phases": list(t.aux_distill_phases) if t.aux_distill_weight else None,
        "stage1_from": t.stage1_from,
        "aux_steps": aux.steps,
        "aux_metrics": metrics,
    }


def measure_speed(dense, small, loader, accelerator: Accelerator, reference: str | None = None,
                  sized_to: bool = False) -> dict:
    """Forward latency of the dense teacher and the pruned model on one real training batch; with `reference`
    (prune.speed_reference or prune.size_of), also of that model beside the pruned one (`speed.reference`): the
    question a size target asks is whether the pruned model is as fast as the one it was sized to (`sized_to`),
    and a user choosing between the two asks it of any model."""
    batch = next(iter(loader))
    inputs = model_inputs(batch, accelerator.device)
    dense_s, small_s = time_alternating(torch_runner(dense.eval(), inputs), torch_runner(small.eval(), inputs),
                                        warmup=1, iterations=5)
    dense_ms, small_ms = 1000 * statistics.median(dense_s), 1000 * statistics.median(small_s)
    speed = {"batch_size": int(inputs["input_ids"].shape[0]), "seq_len": int(inputs["input_ids"].shape[1]),
             "dense_latency_ms": round(dense_ms, 2), "pruned_latency_ms": round(small_ms, 2),
             "speedup": round(dense_ms / small_ms, 2), "device": str(accelerator.device)}
    if reference is not None:
        other = size_reference(reference, small).to(accelerator.device)
        # timed in a pair of its own with the pruned model, so the ratio compares one stretch of the machine's time
        other_s, small_s = time_alternating(torch_runner(other, fitted_inputs(inputs, other.config)),
                                            torch_runner(small, inputs), warmup=1, iterations=5)
        other_ms, small_ms = 1000 * statistics.median(other_s), 1000 * statistics.median(small_s)
        speed["reference"] = {"model": reference, "latency_ms": round(other_ms, 2), "pruned_latency_ms": round(small_ms, 2),
                              "speedup": round(other_ms / small_ms, 2), "sized_to": sized_to}
    return speed


def peak_memory_mb() -> int | None:
    """This process's peak resident memory in MB (a resumed run: since it resumed); None where the platform does not
    say (Windows). What a user sizes a machine by: for a base-size model most of it is the training step's
    activations, the optimizer's state and the cached teacher outputs (distill.teacher_cache_mb)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024))


def build_report(config, spec, teacher, small, masks, result, teacher_metrics, pruned_metrics, constant, speed,
                 timing, n_train, n_dev, n_available=None) -> dict:
    counts = count_parameters(small)
    encoder_total = dense_encoder_params(Dims.of(teacher.config))
    sparsity = 1.0 - counts["encoder_kept"] / encoder_total
    primary = spec.primary_metric
    return {
        "status": "ok",
        "task": spec.name,
        "target_sparsity": config.prune.target_sparsity,
        "sparsity": round(sparsity, 5),
        "expected_sparsity_at_end_of_pruning": round(result.expected_sparsity, 5),
        "params": {"encoder_total": encoder_total, "encoder_kept": counts["encoder_kept"],
                   "embeddings": counts["embeddings"], "total": counts["total"],
                   "dense_total": sum(p.numel() for p in teacher.parameters())},
        "structure": structure_summary(small.config),
        "metrics": {"teacher": teacher_metrics, "pruned": pruned_metrics, "constant_baseline": constant,
                    "primary": primary,
                    "retained": round(pruned_metrics[primary] / teacher_metrics[primary], 4) if teacher_metrics[primary] else None},
        "data": {"train_examples": n_train, "dev_examples": n_dev, "train_available": n_available},
        "speed": speed,
        "distillation": {"layer_matches": result.layer_matches},
        "lagrangian": result.stats,
        "timing": timing,
        "peak_memory_mb": peak_memory_mb(),
        "precision": config.train.precision,
        "processes": distributed.processes(),
        "config": config.model_dump(mode="json"),
    }
