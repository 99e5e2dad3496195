"""Numeric precision of training: fp32, or bf16 / fp16 mixed precision through Accelerate.

`auto` trains in bf16 where the hardware multiplies bf16 (a CPU with AVX512-BF16 or AMX, a GPU that
supports it) and in fp32 elsewhere. The default stays fp32: measured on MiniLM-L6 with AVX512-BF16
(bench/results/precision_job.json), whole jobs in bf16 take 0.4-0.5x the time, and end level on
STS-B at 0.6 but 0.9 points lower on MRPC at 0.9 (mean of 3 seeds); fp32 also gives the same numbers
on every machine. Where bf16 is emulated it is 13x slower (precision_step.json).

Mixed precision runs the model's matrix products in 16 bits under autocast; parameters (weights,
gates, Lagrange multipliers) stay fp32, Accelerate hands the model's outputs back in fp32 so losses
and metrics are fp32, and saved weights are fp32.
"""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs

from auxprune import distributed
from auxprune.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def choose_precision(requested: str) -> tuple[str, str]:
    """The precision a run trains in for `train.precision=requested`, and why (for the report)."""
    if requested != "auto":
        return requested, f"train.precision={requested}"
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: this GPU supports bf16"
        return "fp32", "auto: this GPU does not support bf16"
    if cpu_has_native_bf16():
        return "bf16", "auto: this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX)"
    return "fp32", "auto: this CPU has no bf16 hardware (AVX512-BF16 or AMX), where bf16 is emulated and slower"


def faster_precision_hint(precision: str) -> str | None:
    """A line for the summary when this run trained in fp32 on a CPU that multiplies bf16 in hardware."""
    if precision == "fp32" and not torch.cuda.is_available() and cpu_has_native_bf16():
        return ("this CPU multiplies bf16 in hardware: --set train.precision=bf16 trains in about half the time "
                "(measured: level on STS-B at 0.6, -0.9 points on MRPC at 0.9; bench/results/precision_job.json)")
    return None


def make_accelerator(precision: str) -> Accelerator:
    """An Accelerator for `precision`, refusing what this machine cannot run."""
    if precision == "fp16" and not torch.cuda.is_available():
        raise UserError("train.precision=fp16 needs a GPU; on the CPU use bf16 (or fp32)")
    if precision == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise UserError("train.precision=bf16: this GPU does not support bf16; use fp16 (or fp32)")
    mixed = "no" if precision == "fp32" else precision
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", mixed) != mixed:
        # Accelerate keeps one precision per process; a second run in the same process (a notebook,
        # the tests) may ask for another. The process group (PartialState) is kept.
        AcceleratorState._reset_state()
    if distributed.processes() == 1:
        return Accelerator(mixed_precision=mixed)
    # Several processes (launched with WORLD_SIZE, RANK, MASTER_ADDR/PORT): gloo on the CPU. DDP
    # looks for parameters a step leaves unused (the target head in stage 1, an auxiliary head not
    # drawn).
    return Accelerator(mixed_precision=mixed, cpu=not torch.cuda.is_available(),
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), where bf16 pays off."""
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def precision_warnings(precision: str) -> list[str]:
    """A line when the chosen precision will be slow here: bf16 on a CPU without bf16 hardware is
    emulated (measured on an AVX2-only EPYC: fwd+bwd of MiniLM-L6 at 32 x 64, 4.3 s fp32, 53 s bf16)."""
    if precision == "bf16" and not torch.cuda.is_available() and not cpu_has_native_bf16():
        return ["train.precision=bf16 on a CPU without bf16 hardware (AVX512-BF16 or AMX): bf16 is emulated and "
                "runs several times slower than fp32 here; use fp32"]
    return []
