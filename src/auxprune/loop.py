"""The one training loop: any phase, any pruner, any loss terms (they live in `losses.Objective`).

Every phase runs here under a Hugging Face `Accelerator`: the objective (model, pruner, layer map,
auxiliary heads) is prepared as one module, so every trainable parameter moves to the
accelerator's device and, with several processes, one DDP wrapper averages the gradients of all of
them; the weights' optimizer and the pruner's own optimizers step together after one backward
pass. `LoopState` checkpoints the loop and resumes it exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from auxprune import distributed
from auxprune.checkpoint import LoopState, Value
from auxprune.losses import Objective


class RunLog:
    """Training curves as JSON lines, flushed as they come so a killed run keeps its log."""

    def __init__(self, path: Path | None):
        self.path = path
        self.handle = path.open("a", encoding="utf-8") if path else None

    def write(self, **record) -> None:
        if self.handle:
            self.handle.write(json.dumps(record) + "\n")
            self.handle.flush()

    def close(self) -> None:
        if self.handle:
            self.handle.close()


def batches(loader: DataLoader, steps: int) -> Iterator[dict[str, Tensor]]:
    """`steps` batches, going round the loader as many epochs as needed.

    A phase that ends mid-epoch abandons the rest of it: the next phase starts a new epoch.
    """
    done = 0
    while done < steps:
        for batch in loader:
            done += 1
            if done == steps and hasattr(loader.batch_sampler, "end_epoch"):
                loader.batch_sampler.end_epoch()  # before the last step, so its checkpoint knows
            yield batch
            if done == steps:
                return


def progress(steps: int, desc: str, done: int = 0) -> tqdm:
    """A step bar starting at `done` (a resumed run); as a context manager it closes also on Ctrl-C, so the
    bar does not swallow the last message."""
    return tqdm(total=steps, initial=done, desc=desc, unit="step", dynamic_ncols=True, leave=True,
                disable=not distributed.is_main())


def weights_optimizer(params: list, lr: float, steps: int, config):
    """AdamW with the run's weight decay and a linear schedule with warm-up over `steps`."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=config.train.weight_decay)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(config.train.warmup_ratio * steps), steps)


def run(objective: Objective, *, weights: list, lr: float, steps: int, loader: DataLoader | None, config,
        accelerator: Accelerator, log, phase: str, state: LoopState | None = None) -> Objective:
    """Train `objective` for `steps` steps on `loader` (None: steps without a target batch).

    `weights` are the parameters the AdamW optimizer trains (and whose gradients are clipped); the
    pruners bring their own optimizers. Returns the prepared objective, in eval mode.
    """
    optimizer, schedule = weights_optimizer(weights, lr, steps, config)
    pruners = objective.pruners()
    own = [opt for pruner in pruners for opt in pruner.optimizers()]
    objective, optimizer, *own = accelerator.prepare(objective, optimizer, *own)
    model = accelerator.unwrap_model(objective)
    state = state or LoopState(phase)
    objects = {"model": model.model, "optimizer": optimizer, "schedule": schedule,
               **({"pruner": model.pruner} if model.pruner is not None else {}),
               **({"layer_distiller": model.layer_map} if model.layer_map is not None else {}),
               **(_sampler(loader) if loader is not None else {}),
               **({"aux": model.aux} if model.aux is not None else {})}
    done = state.start(objects)
    if model.layer_map is not None:
        model.matches = list((state.restore or {}).get("layer_matches", []))
    objective.train()
    stream = batches(loader, steps - done) if loader is not None else iter(lambda: None, 0)
    with progress(steps, phase, done) as bar:
        for step in range(done + 1, steps + 1):
            parts = objective(next(stream), step)
            sparsity = pruners[0].expected_sparsity().detach() if pruners else None
            total = parts["loss"] + parts["regularization"] if "regularization" in parts else parts["loss"]
            _update(total, weights, (optimizer, *own), schedule, accelerator, config.train.max_grad_norm)
            for pruner in pruners:
                pruner.after_step()
            loss = parts["loss"].item()
            bar.update()
            bar.set_postfix(loss=f"{loss:.4f}", **({"sparsity": f"{sparsity.item():.3f}"} if pruners else {}))
            if step % config.train.log_every == 0 or step == steps:
                # Each process holds its slice's losses: the log has their mean (the whole batch's).
                losses = {"loss": parts["loss"],
                          **{f"loss_{k}": v for k, v in parts.items() if k not in ("loss", "regularization")}}
                record = {"phase": phase, "step": step, **distributed.mean_values(losses)}
                if pruners:
                    record.update(expected_sparsity=sparsity.item(), **pruners[0].log_values(step))
                    distributed.check_replicated("expected sparsity and multipliers", [sparsity.item(), *(
                        v for k, v in pruners[0].log_values(step).items() if k != "target")])
                log.write(**record, lr=schedule.get_last_lr()[0],
                          **({"layer_matches": model.matches} if pruners else {}))
            state.after_step(step, steps, {**objects, "layer_matches": Value(model.matches)} if pruners else objects)
    objective.eval()
    return model


def _update(loss: Tensor, params: list, optimizers: tuple, schedule, accelerator: Accelerator, max_grad_norm: float) -> None:
    """One training step: backward, clip `params` (the weights), step and clear every optimizer, schedule."""
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(params, max_grad_norm)
    for optimizer in optimizers:
        optimizer.step()
        optimizer.zero_grad()
    schedule.step()


def _sampler(loader: DataLoader) -> dict:
    """The loader's batch sampler when it can save its position (training loaders can)."""
    sampler = loader.batch_sampler
    return {"sampler": sampler} if hasattr(sampler, "state_dict") else {}

