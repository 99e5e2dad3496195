"""The auxiliary side of a run: heads, the mixed batch stream, and how it shares with the target.

What the auxiliary task shares with the target during pruning (`what` x `share`):

| what / share | encoder the aux loss runs through | gates it uses | tied by penalty |
|---|---|---|---|
| both / hard | the target's student | the target's (same sample) | - |
| weights / hard | the target's student | its own | - |
| masks / hard | its own copy | the target's (same sample) | - |
| both / tied | its own copy | its own | weights and gate logits |
| weights / tied | its own copy | its own | weights |
| masks / tied | its own copy | its own | gate logits |

Outside pruning (teacher and final fine-tuning) there are no gates: the auxiliary loss runs
through the model being trained (hard-shared encoder), with its own heads.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from auxprune.data.batching import ordered_predictions
from auxprune.data.metrics import compute_metrics
from auxprune.losses import squared_distance
from auxprune.model.encoder import AuxpruneForSequenceClassification, LinearHead, PairHead, sliced_linear, task_loss
from auxprune.model.inputs import MODEL_INPUTS
from auxprune.pruners import Pruner
from auxprune.structure import FinalMasks
from auxprune.transfer.schedule import Schedule
from auxprune.transfer.sources import AuxTask, mask_tokens


class MaskedLMHead(nn.Module):
    """BERT's MLM head: transform, then a decoder tied to the input word embeddings."""

    def __init__(self, hidden: int, vocab: int, eps: float = 1e-12):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, states: Tensor, word_embeddings: Tensor) -> Tensor:
        return F.linear(self.norm(F.gelu(self.dense(states))), word_embeddings, self.bias)

    @torch.no_grad()
    def sliced_state(self, hidden: Tensor) -> dict[str, Tensor]:
        """The transform in the kept `hidden` dimensions; the decoder bias is over the vocabulary."""
        dense = sliced_linear(self.dense, rows=hidden, columns=hidden)
        index = hidden.to(self.norm.weight.device)
        return {"dense.weight": dense["weight"], "dense.bias": dense["bias"],
                "norm.weight": self.norm.weight.detach()[index], "norm.bias": self.norm.bias.detach()[index],
                "bias": self.bias.detach()}


def make_heads(tasks: list[AuxTask], model: AuxpruneForSequenceClassification) -> nn.ModuleDict:
    """One head per auxiliary task, each with its own output space. A bi-encoder's pair tasks get a
    pair head like the target's (cosine for regression and two classes, else [u, v, |u - v|])."""
    c = model.config
    pooled = model.encoder.pooled_size

    def head(t: AuxTask) -> nn.Module:
        if t.kind == "mlm":
            return MaskedLMHead(c.hidden_size, c.vocab_size, c.layer_norm_eps)
        if t.pairs:
            return PairHead(pooled, t.num_labels, "cosine" if t.num_labels == 2 else "concat")
        return LinearHead(pooled, t.num_labels)

    return nn.ModuleDict({_key(t.name): head(t) for t in tasks})


def _key(name: str) -> str:
    return name.replace(".", "_").replace("/", "_").replace(":", "_")


class AuxBranch(nn.Module):
    """Auxiliary tasks with their heads; draws a task per step by mixing weight and computes its loss."""

    def __init__(self, tasks: list[AuxTask], model: AuxpruneForSequenceClassification, schedule: Schedule,
                 tokenizer, seed: int):
        super().__init__()
        self.tasks, self.schedule, self.tokenizer = tasks, schedule, tokenizer
        self.heads = make_heads(tasks, model)
        self.pick = torch.Generator().manual_seed(seed)
        self.masking = torch.Generator().manual_seed(seed + 1)
        self._streams: dict[int, Iterator] = {}
        self.steps = 0
        # Pruning-time sharing (see the module docstring), set by `for_pruning`. Kept out of the
        # module tree: a shared encoder or gate set belongs to the target and is saved there.
        object.__setattr__(self, "encoder", None)
        object.__setattr__(self, "gates", None)
        self.own_encoder = self.own_gates = False
        self.ties: tuple[str, ...] = ()

    def weight(self, phase: str, step: int) -> float:
        return self.schedule(phase, step)

    def next_batch(self) -> tuple[AuxTask, dict[str, Tensor]]:
        weights = torch.tensor([t.weight for t in self.tasks], dtype=torch.float)
        index = int(torch.multinomial(weights, 1, generator=self.pick))
        stream = self._streams.get(index)
        if stream is None:
            stream = self._streams[index] = _forever(self.tasks[index].loader)
        return self.tasks[index], next(stream)

    def next_inputs(self, device: torch.device) -> dict[str, Tensor]:
        """The model inputs of the next auxiliary batch, its labels unused (to distil the teacher on);
        `pairs` is in it when the batch holds pairs encoded apart (a bi-encoder's layout)."""
        _, batch = self.next_batch()
        self.steps += 1
        return {k: batch[k].to(device) for k in (*MODEL_INPUTS, "pairs") if k in batch}

    def loss(self, model: AuxpruneForSequenceClassification, gates: dict[str, Tensor] | None,
             device: torch.device) -> Tensor:
        """The loss of one auxiliary batch through `model` (with `gates` when pruning)."""
        task, batch = self.next_batch()
        self.steps += 1
        if task.kind == "mlm":
            batch = mask_tokens(batch, self.tokenizer, self.masking)
        x = {k: batch[k].to(device) for k in MODEL_INPUTS}
        labels = batch["labels"].to(device)
        pooled, states = model.encoder.encode(**x, gates=gates)
        head = self.heads[_key(task.name)]
        if task.kind == "mlm":
            picked = labels != -100
            if not picked.any():
                return states[-1].sum() * 0.0
            logits = head(states[-1][picked], model.encoder.embeddings.word_embeddings.weight)
            return F.cross_entropy(logits, labels[picked])
        if isinstance(head, PairHead):
            return head.loss(head(pooled), labels, task.label_range)
        return task_loss(head(model.dropout(pooled)), labels)

    def for_pruning(self, student: AuxpruneForSequenceClassification, pruner: Pruner, what: str, share: str) -> None:
        """Set up the sharing for pruning: its own encoder copy and/or its own gates (a twin of `pruner`)."""
        own_encoder = self.own_encoder = share == "tied" or what == "masks"
        own_gates = self.own_gates = share == "tied" or what == "weights"
        if share == "tied":
            self.ties = {"both": ("weights", "gates"), "weights": ("weights",), "masks": ("gates",)}[what]
        object.__setattr__(self, "encoder", copy.deepcopy(student) if own_encoder else student)
        # Tied gates start from agreement.
        object.__setattr__(self, "gates", pruner.twin(copy="gates" in self.ties) if own_gates else pruner)

    def trainable(self) -> tuple[list[nn.Parameter], list[nn.Module]]:
        """What pruning trains on the auxiliary side besides the target's: the weights (heads, own
        encoder) and the modules that must move with the model (heads, own encoder, own gates)."""
        weights = list(self.heads.parameters()) + (list(self.encoder.encoder.parameters()) if self.own_encoder else [])
        modules = [self.heads] + ([self.encoder] if self.own_encoder else []) + ([self.gates] if self.own_gates else [])
        return weights, modules

    def tie_penalty(self, student: AuxpruneForSequenceClassification, target: Pruner) -> Tensor:
        """Squared distance between tied copies (encoder weights, mask parameters)."""
        pairs = []
        if "weights" in self.ties:
            pairs += zip(student.encoder.parameters(), self.encoder.encoder.parameters())
        if "gates" in self.ties:
            own = self.gates.mask_parameters()
            pairs += [(p, own[name]) for name, p in target.mask_parameters().items()]
        return squared_distance(pairs)

    @torch.no_grad()
    def cut(self, masks: FinalMasks, pooling: str) -> None:
        """Cut the heads to the kept hidden dimensions, as `surgery.cut` cuts the model: a head over
        the pooled vector reads only the kept dimensions (unless a pooler keeps the full width),
        the masked-LM head's transform works in the kept width."""
        hidden = masks.keep["hidden"].nonzero().squeeze(-1)
        if hidden.numel() == masks.dims.hidden_size:
            return
        for key, head in list(self.heads.items()):
            if isinstance(head, MaskedLMHead):
                small = MaskedLMHead(hidden.numel(), head.bias.numel(), head.norm.eps)
            elif pooling == "pooler" or (isinstance(head, PairHead) and head.kind != "concat"):
                continue  # reads the pooler's full width; a cosine reads whatever dimensions are kept
            elif isinstance(head, PairHead):
                small = PairHead(hidden.numel(), head.num_labels, "concat")
            else:
                small = LinearHead(hidden.numel(), head.out_features)
            small.load_state_dict(head.sliced_state(hidden))
            self.heads[key] = small.to(next(head.parameters()).device)

    @torch.no_grad()
    def evaluate(self, model: AuxpruneForSequenceClassification, device: torch.device,
                 gates: dict[str, Tensor] | None = None) -> dict[str, dict]:
        """Dev metrics of the labelled auxiliary tasks that have a dev split (through `gates` if given)."""
        model.eval()
        results = {}
        for task in self.tasks:
            if task.dev_loader is None or task.spec is None:
                continue
            head = self.heads[_key(task.name)]
            predictions = ordered_predictions(
                task.dev_loader, lambda batch, head=head: head(model.encoder.encode(**{k: batch[k].to(device) for k in MODEL_INPUTS},
                                                                   gates=gates)[0]))
            results[task.name] = compute_metrics(task.spec, predictions, task.dev_labels)
        return results

    def state_dict(self, *args, **kwargs) -> dict:
        """Heads, own encoder/gates, and the position of every stream: enough to resume exactly."""
        state = {"modules": super().state_dict(), "pick": self.pick.get_state(), "masking": self.masking.get_state(),
                 "steps": self.steps, "samplers": [t.loader.batch_sampler.state_dict() for t in self.tasks]}
        if self.own_encoder:
            state["encoder"] = self.encoder.state_dict()
        if self.own_gates:
            state["gates"] = self.gates.state_dict()
        return state

    def rank_state_dict(self) -> dict:
        """What differs between processes of a data-parallel run: the masking draws (each masks its own slice)."""
        return {"masking": self.masking.get_state()}

    def load_rank_state_dict(self, state: dict) -> None:
        self.masking.set_state(state["masking"])

    def load_state_dict(self, state: dict, strict: bool = True):  # type: ignore[override]
        super().load_state_dict(state["modules"], strict=strict)
        self.pick.set_state(state["pick"])
        self.masking.set_state(state["masking"])
        self.steps = state["steps"]
        for task, sampler_state in zip(self.tasks, state["samplers"]):
            task.loader.batch_sampler.load_state_dict(sampler_state)
        self._streams = {}  # new iterators continue where the samplers stopped
        if self.own_encoder:
            self.encoder.load_state_dict(state["encoder"])
        if self.own_gates:
            self.gates.load_state_dict(state["gates"])


def _forever(loader) -> Iterator[dict[str, Tensor]]:
    while True:
        yield from loader
