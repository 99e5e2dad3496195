"""A self-contained BERT-style encoder whose every layer can have its own width.

Each layer has its own number of attention heads and FFN units (0 removes the block) and the
residual stream has one kept width, so a pruned model is an ordinary module with smaller
matrices: no masks, no index gathers at inference.

During pruning the same modules run at full size with *gates*: a mapping from gate family to
tensor (see `auxprune.structure.FAMILIES`) whose values scale heads, FFN units, whole blocks and
hidden dimensions. Optional boolean `*_keep` entries say which units exist; they make the gated
model compute exactly what the cut model computes (see `auxprune.surgery`).

Architecture switches come from the config: no segment embeddings when `type_vocab_size` is 0,
and MPNet's relative position bias when `relative_attention_num_buckets` > 0 (computed once per
forward from the positions, one row per original head; each layer adds the rows of the heads it
kept, `config.head_ids(layer)`, to its attention scores).

Structure lives with the modules: each one (embeddings, attention, FFN, layer, pooler, task heads)
has `param_count(...)` and `flops(...)`, formulas of its structure (the widths it keeps), and
`sliced_state(...)`, its weights restricted to kept heads, units and hidden dimensions with the gate
values folded in. `surgery.cut`, `sparsity` (the exact count and the expected count the sparsity
controller steers, which calls the same formulas with keep probabilities) and `speed.forward_flops`
are compositions of these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput

from auxprune.model.configuration import AuxpruneConfig

Gates = Mapping[str, Tensor]
RELATIVE_MAX_DISTANCE = 128  # MPNet's: relative distances beyond it share the last bucket


def gated_layer_norm(x: Tensor, norm: nn.LayerNorm, gate: Tensor | None, keep: Tensor | None) -> Tensor:
    """LayerNorm over the hidden dimensions that exist, then scaled by the hidden gate.

    Statistics are taken over kept dimensions only, because that is what the cut model's
    smaller LayerNorm computes; pruned dimensions come out as exact zeros.
    """
    if gate is None:
        return norm(x)
    kept = keep if keep is not None else gate != 0
    index = kept.nonzero().squeeze(-1)
    normed = F.layer_norm(x.index_select(-1, index), (index.numel(),), norm.weight[index], norm.bias[index], norm.eps)
    return torch.zeros_like(x).index_copy(-1, index, normed) * gate


def _block_is_off(gates: Gates | None, family: str, layer: int) -> bool:
    """A block is skipped (residual passes through, no LayerNorm) when its `*_keep` entry says it is absent
    (the final masks', or a pruner's: `structure.sublayers_present`), or else when its gate is closed."""
    if gates is None:
        return False
    keep = gates.get(f"{family}_keep")
    if keep is not None:
        return not bool(keep[layer])
    return family in gates and bool(gates[family][layer] == 0)


def _on(index: Tensor, like: Tensor) -> Tensor:
    return index.to(like.device)


def sliced_linear(linear: nn.Linear, rows: Tensor | None = None, columns: Tensor | None = None,
                  column_scale: Tensor | None = None, bias_scale: Tensor | None = None) -> dict[str, Tensor]:
    """A linear layer's weights restricted to kept outputs (`rows`) and inputs (`columns`), None: all.

    `column_scale` (per kept input, or a number) folds the gates that scaled the inputs into the
    weight; `bias_scale` folds a gate that scaled the whole output into the bias (the weight's
    share of it is in `column_scale`).
    """
    weight, bias = linear.weight.detach(), linear.bias.detach()
    if rows is not None:
        weight, bias = weight[_on(rows, weight)], bias[_on(rows, bias)]
    if columns is not None:
        weight = weight[:, _on(columns, weight)]
    if column_scale is not None:
        weight = weight * _on(column_scale, weight)
    if bias_scale is not None:
        bias = bias * _on(bias_scale, bias)
    return {"weight": weight, "bias": bias}


def sliced_layer_norm(norm: nn.LayerNorm, hidden: Tensor, hidden_scale: Tensor) -> dict[str, Tensor]:
    """A LayerNorm over the kept hidden dimensions, the hidden gate folded into its affine parameters."""
    index, scale = _on(hidden, norm.weight), _on(hidden_scale, norm.weight)
    return {"weight": norm.weight.detach()[index] * scale, "bias": norm.bias.detach()[index] * scale}


def _prefixed(prefix: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}.{key}": value for key, value in state.items()}


def relative_position_buckets(seq_len: int, num_buckets: int, device: torch.device) -> Tensor:
    """MPNet's bucket (T5-style, both directions) of every key position relative to every query position.

    Half the buckets are for keys before the query, half for keys after; within a half, the first
    quarter of the buckets hold exact distances and the rest logarithmically wider ranges up to
    `RELATIVE_MAX_DISTANCE`.
    """
    positions = torch.arange(seq_len, device=device)
    distance = positions[:, None] - positions[None, :]  # query minus key
    half = num_buckets // 2
    exact = half // 2
    buckets = (distance < 0).long() * half
    distance = distance.abs()
    # The clamp only keeps log() finite where `exact` is taken anyway (MPNet takes log(0) there).
    far = exact + (torch.log(distance.clamp(min=exact).float() / exact) / math.log(RELATIVE_MAX_DISTANCE / exact)
                   * (half - exact)).long()
    return buckets + torch.where(distance < exact, distance, far.clamp(max=half - 1))


class Embeddings(nn.Module):
    """Token, position and (when the architecture has them) segment embeddings; MPNet's position bias."""

    def __init__(self, config: AuxpruneConfig):
        super().__init__()
        d = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, d)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, d) if config.type_vocab_size > 0 else None
        self.relative_attention_bias = (nn.Embedding(config.relative_attention_num_buckets, config.original_num_heads)
                                        if config.relative_attention_num_buckets > 0 else None)
        self.LayerNorm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.position_offset = config.position_offset

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None, gates: Gates | None) -> Tensor:
        seq_len = input_ids.shape[1]
        positions = torch.arange(self.position_offset, self.position_offset + seq_len, device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
        if self.token_type_embeddings is not None:  # an architecture without segments ignores token_type_ids
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.token_type_embeddings(token_type_ids)
        x = gated_layer_norm(x, self.LayerNorm, *_hidden_gate(gates))
        return self.dropout(x)

    def position_bias(self, seq_len: int, device: torch.device) -> Tensor | None:
        """The relative position bias, original heads x query x key; None without one."""
        if self.relative_attention_bias is None:
            return None
        buckets = relative_position_buckets(seq_len, self.relative_attention_bias.num_embeddings, device)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    @staticmethod
    def param_count(config: AuxpruneConfig, hidden: int) -> int:
        """Token, position and segment tables of width `hidden`, the position bias (buckets x original
        heads, whatever the width), the LayerNorm."""
        tables = config.vocab_size + config.max_position_embeddings + config.type_vocab_size
        bias = config.relative_attention_num_buckets * config.original_num_heads
        return tables * hidden + bias + 2 * hidden

    @staticmethod
    def flops(hidden: int, seq_len: int) -> int:
        """Look-ups and sums only: no multiply-adds are counted (see `speed.forward_flops`)."""
        return 0

    @torch.no_grad()
    def sliced_state(self, hidden: Tensor, hidden_scale: Tensor) -> dict[str, Tensor]:
        """The tables' kept hidden columns; the position bias whole (it has a row per original head, no
        hidden dimension); the hidden gate folded into the LayerNorm."""
        state = {}
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            table = getattr(self, name)
            if table is not None:
                state[f"{name}.weight"] = table.weight.detach()[:, _on(hidden, table.weight)]
        if self.relative_attention_bias is not None:
            state["relative_attention_bias.weight"] = self.relative_attention_bias.weight.detach()
        return state | _prefixed("LayerNorm", sliced_layer_norm(self.LayerNorm, hidden, hidden_scale))


def _hidden_gate(gates: Gates | None) -> tuple[Tensor | None, Tensor | None]:
    if gates is None or "hidden" not in gates:
        return None, None
    return gates["hidden"], gates.get("hidden_keep")


class Attention(nn.Module):
    """Multi-head self-attention with its output projection and post-LayerNorm."""

    def __init__(self, config: AuxpruneConfig, num_heads: int, head_ids: list[int]):
        super().__init__()
        d, width = config.hidden_size, num_heads * config.head_dim
        self.num_heads, self.head_dim, self.hidden_size = num_heads, config.head_dim, d
        # Which rows of the position bias are this layer's heads (None: all of them, in order).
        self.head_ids = None if list(head_ids) == list(range(config.original_num_heads)) else list(head_ids)
        self.query = nn.Linear(d, width)
        self.key = nn.Linear(d, width)
        self.value = nn.Linear(d, width)
        self.output = nn.Linear(width, d)
        self.LayerNorm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.attn_dropout = config.attention_probs_dropout_prob
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, mask_bias: Tensor, head_gate: Tensor | None, block_gate: Tensor | None,
                hidden: tuple[Tensor | None, Tensor | None], position_bias: Tensor | None = None) -> Tensor:
        batch, seq, _ = x.shape

        def split(t: Tensor) -> Tensor:
            return t.view(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)

        if position_bias is not None:
            if self.head_ids is not None:
                position_bias = position_bias.index_select(0, torch.tensor(self.head_ids, device=position_bias.device))
            mask_bias = position_bias[None] + mask_bias
        context = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)),
            attn_mask=mask_bias, dropout_p=self.attn_dropout if self.training else 0.0,
        )
        if head_gate is not None:
            context = context * head_gate[None, :, None, None]
        out = self.output(context.transpose(1, 2).reshape(batch, seq, self.num_heads * self.head_dim))
        if block_gate is not None:
            out = out * block_gate
        return gated_layer_norm(self.dropout(out) + x, self.LayerNorm, *hidden)

    # The formulas take numbers or tensors: `sparsity.expected_encoder_params` passes expected widths.
    @staticmethod
    def param_count(num_heads: int | Tensor, hidden: int | Tensor, head_dim: int) -> int | Tensor:
        """Q, K, V (weights and biases), the output projection, and the LayerNorm."""
        width = num_heads * head_dim
        return 4 * width * hidden + 3 * width + hidden + 2 * hidden

    @staticmethod
    def flops(num_heads: int, hidden: int, head_dim: int, seq_len: int) -> int:
        """Per token the Q, K, V and output projections, and the scores and context over `seq_len` keys."""
        width = num_heads * head_dim
        return seq_len * (2 * 4 * width * hidden + 2 * 2 * width * seq_len)

    @torch.no_grad()
    def sliced_state(self, heads: Tensor, hidden: Tensor, head_scale: Tensor, block_scale: Tensor,
                     hidden_scale: Tensor) -> dict[str, Tensor]:
        """The kept `heads` (indices among this module's) reading and writing the kept `hidden`
        dimensions; head and block gates folded into the output projection, the hidden gate into the LayerNorm."""
        rows = (_on(heads, self.query.weight)[:, None] * self.head_dim
                + torch.arange(self.head_dim, device=self.query.weight.device)).flatten()
        state = {}
        for name in ("query", "key", "value"):
            state |= _prefixed(name, sliced_linear(getattr(self, name), rows=rows, columns=hidden))
        weight = self.output.weight
        column_scale = _on(head_scale, weight).repeat_interleave(self.head_dim) * _on(block_scale, weight)
        state |= _prefixed("output", sliced_linear(self.output, rows=hidden, columns=rows, column_scale=column_scale,
                                                   bias_scale=block_scale))
        return state | _prefixed("LayerNorm", sliced_layer_norm(self.LayerNorm, hidden, hidden_scale))


class FeedForward(nn.Module):
    def __init__(self, config: AuxpruneConfig, num_units: int):
        super().__init__()
        d = config.hidden_size
        self.num_units, self.hidden_size = num_units, d
        self.intermediate = nn.Linear(d, num_units)
        self.output = nn.Linear(num_units, d)
        self.LayerNorm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.act = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, unit_gate: Tensor | None, block_gate: Tensor | None,
                hidden: tuple[Tensor | None, Tensor | None]) -> Tensor:
        h = self.act(self.intermediate(x))
        if unit_gate is not None:
            h = h * unit_gate
        out = self.output(h)
        if block_gate is not None:
            out = out * block_gate
        return gated_layer_norm(self.dropout(out) + x, self.LayerNorm, *hidden)

    @staticmethod
    def param_count(num_units: int | Tensor, hidden: int | Tensor) -> int | Tensor:
        """Both projections (weights and biases) and the LayerNorm."""
        return 2 * num_units * hidden + num_units + hidden + 2 * hidden

    @staticmethod
    def flops(num_units: int, hidden: int, seq_len: int) -> int:
        return seq_len * 2 * 2 * num_units * hidden

    @torch.no_grad()
    def sliced_state(self, units: Tensor, hidden: Tensor, unit_scale: Tensor, block_scale: Tensor,
                     hidden_scale: Tensor) -> dict[str, Tensor]:
        """The kept `units` reading and writing the kept `hidden` dimensions; unit and block gates
        folded into the output projection, the hidden gate into the LayerNorm."""
        column_scale = _on(unit_scale, self.output.weight) * _on(block_scale, self.output.weight)
        return (_prefixed("intermediate", sliced_linear(self.intermediate, rows=units, columns=hidden))
                | _prefixed("output", sliced_linear(self.output, rows=hidden, columns=units, column_scale=column_scale,
                                                    bias_scale=block_scale))
                | _prefixed("LayerNorm", sliced_layer_norm(self.LayerNorm, hidden, hidden_scale)))


class Layer(nn.Module):
    """One transformer layer; a block with zero width is absent (None) and the residual passes."""

    def __init__(self, config: AuxpruneConfig, num_heads: int, num_units: int, head_ids: list[int]):
        super().__init__()
        self.attention = Attention(config, num_heads, head_ids) if num_heads > 0 else None
        self.ffn = FeedForward(config, num_units) if num_units > 0 else None

    def forward(self, x: Tensor, mask_bias: Tensor, gates: Gates | None, index: int,
                position_bias: Tensor | None = None) -> Tensor:
        hidden = _hidden_gate(gates)
        g = gates or {}
        if self.attention is not None and not _block_is_off(gates, "attn_block", index):
            x = self.attention(x, mask_bias, _row(g, "heads", index), _row(g, "attn_block", index), hidden, position_bias)
        if self.ffn is not None and not _block_is_off(gates, "ffn_block", index):
            x = self.ffn(x, _row(g, "ffn_units", index), _row(g, "ffn_block", index), hidden)
        return x

    @staticmethod
    def param_count(num_heads: int, num_units: int, hidden: int, head_dim: int) -> int:
        """A block of width 0 is absent and counts nothing."""
        return ((Attention.param_count(num_heads, hidden, head_dim) if num_heads > 0 else 0)
                + (FeedForward.param_count(num_units, hidden) if num_units > 0 else 0))

    @staticmethod
    def flops(num_heads: int, num_units: int, hidden: int, head_dim: int, seq_len: int) -> int:
        return ((Attention.flops(num_heads, hidden, head_dim, seq_len) if num_heads > 0 else 0)
                + (FeedForward.flops(num_units, hidden, seq_len) if num_units > 0 else 0))


def _row(gates: Gates, family: str, index: int) -> Tensor | None:
    return gates[family][index] if family in gates else None


class CountedLinear(nn.Linear):
    """A linear layer that counts its parameters and FLOPs from its widths (per vector it reads)."""

    @staticmethod
    def param_count(inputs: int, outputs: int) -> int:
        return inputs * outputs + outputs

    @staticmethod
    def flops(inputs: int, outputs: int) -> int:
        return 2 * inputs * outputs


class Pooler(CountedLinear):
    """The `[CLS]` pooler's dense layer (`AuxpruneModel.pool` applies the tanh): it reads the kept
    hidden dimensions and keeps its full output width."""

    @torch.no_grad()
    def sliced_state(self, hidden: Tensor) -> dict[str, Tensor]:
        return sliced_linear(self, columns=hidden)


class LinearHead(CountedLinear):
    """A cross-encoder's task head: a linear layer on the pooled vector."""

    @torch.no_grad()
    def sliced_state(self, pooled: Tensor | None) -> dict[str, Tensor]:
        """Reading the kept pooled dimensions (None: all of them, as after a pooler)."""
        return sliced_linear(self, columns=pooled)


class AuxprunePreTrainedModel(PreTrainedModel):
    config_class = AuxpruneConfig
    base_model_prefix = "auxprune"
    main_input_name = "input_ids"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, PairHead):
            module.reset_parameters()


class AuxpruneModel(AuxprunePreTrainedModel):
    """The encoder plus pooling: returns (pooled, per-layer hidden states)."""

    def __init__(self, config: AuxpruneConfig):
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(
            Layer(config, heads, units, config.head_ids(index))
            for index, (heads, units) in enumerate(zip(config.layer_heads, config.layer_ffn))
        )
        self.pooler = Pooler(config.hidden_size, config.pooler_size) if config.pooling == "pooler" else None
        self.post_init()

    @staticmethod
    def param_count(config: AuxpruneConfig) -> int:
        """Embeddings, layers and pooler of the structure `config` describes."""
        hidden = config.hidden_size
        layers = sum(Layer.param_count(heads, units, hidden, config.head_dim)
                     for heads, units in zip(config.layer_heads, config.layer_ffn))
        pooler = Pooler.param_count(hidden, config.pooler_size) if config.pooling == "pooler" else 0
        return Embeddings.param_count(config, hidden) + layers + pooler

    @staticmethod
    def flops(config: AuxpruneConfig, seq_len: int) -> int:
        """One sequence of `seq_len` tokens through the layers (and the pooler, once)."""
        hidden = config.hidden_size
        layers = sum(Layer.flops(heads, units, hidden, config.head_dim, seq_len)
                     for heads, units in zip(config.layer_heads, config.layer_ffn))
        pooler = Pooler.flops(hidden, config.pooler_size) if config.pooling == "pooler" else 0
        return Embeddings.flops(hidden, seq_len) + layers + pooler

    @staticmethod
    def pooled_width(config: AuxpruneConfig) -> int:
        return config.pooler_size if config.pooling == "pooler" else config.hidden_size

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embeddings.word_embeddings = value

    @property
    def pooled_size(self) -> int:
        return self.pooled_width(self.config)

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
               gates: Gates | None = None) -> tuple[Tensor, list[Tensor]]:
        """(pooled sentence vectors, hidden states: the embeddings', then one per layer)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids, gates)
        dtype_min = torch.finfo(x.dtype).min
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * dtype_min
        position_bias = self.embeddings.position_bias(input_ids.shape[1], input_ids.device)
        if position_bias is not None:
            position_bias = position_bias.to(x.dtype)
        states = [x]
        for index, layer in enumerate(self.layers):
            x = layer(x, mask_bias, gates, index, position_bias)
            states.append(x)
        return self.pool(x, attention_mask), states

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                gates: Gates | None = None, output_hidden_states: bool = False, return_dict: bool | None = None,
                **_: object) -> BaseModelOutputWithPooling | tuple:
        """Hugging Face's encoder output: token states first (what sentence-transformers pools), the
        pooled vector as `pooler_output`."""
        pooled, states = self.encode(input_ids, attention_mask, token_type_ids, gates)
        hidden = tuple(states) if output_hidden_states else None
        if return_dict is False:
            return (states[-1], pooled) + ((hidden,) if hidden is not None else ())
        return BaseModelOutputWithPooling(last_hidden_state=states[-1], pooler_output=pooled, hidden_states=hidden)

    def pool(self, x: Tensor, attention_mask: Tensor) -> Tensor:
        if self.config.pooling == "mean":
            weights = attention_mask[..., None].to(x.dtype)
            return (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        first = x[:, 0]
        return torch.tanh(self.pooler(first)) if self.pooler is not None else first


@dataclass
class PairClassifierOutput(SequenceClassifierOutput):
    """The classifier's output plus the pooled sentence vectors (a bi-encoder's embeddings)."""

    embeddings: Tensor | None = None


class PairHead(nn.Module):
    """A bi-encoder's head: the batch holds side A of every pair, then side B (see `data.batching`), each
    pooled on its own; the head compares the two embeddings.

    Regression: the cosine itself (the label is scaled to [0, 1] for the loss, as sentence-transformers'
    CosineSimilarityLoss does). Classification `cosine` (two classes): class 1 has logit
    scale * (cosine - threshold), learned. `concat`: a linear layer on [u, v, |u - v|] (SBERT's classifier).
    """

    def __init__(self, width: int, num_labels: int, classifier: str):
        super().__init__()
        self.width, self.num_labels = width, num_labels
        self.kind = self.kind_of(num_labels, classifier)
        if self.kind == "cosine":
            if num_labels != 2:
                raise ValueError(f"the cosine pair classifier has two classes, the task has {num_labels}; use concat")
            self.scale = nn.Parameter(torch.empty(()))
            self.threshold = nn.Parameter(torch.empty(()))
        elif self.kind == "concat":
            self.linear = nn.Linear(3 * width, num_labels)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        if self.kind == "cosine":
            self.scale.fill_(10.0)
            self.threshold.fill_(0.5)
        elif self.kind == "concat":
            nn.init.normal_(self.linear.weight, std=0.02)
            nn.init.zeros_(self.linear.bias)

    @staticmethod
    def kind_of(num_labels: int, classifier: str) -> str:
        return "regression" if num_labels == 1 else classifier

    @staticmethod
    def param_count(width: int, num_labels: int, kind: str) -> int:
        """`kind` as `PairHead.kind`: regression has no parameters, cosine a scale and a threshold."""
        return {"regression": 0, "cosine": 2}.get(kind, 3 * width * num_labels + num_labels)

    @staticmethod
    def flops(width: int, num_labels: int) -> int:
        # Counted per sequence as a cross-encoder's linear head is, whatever the kind: the comparison
        # costs a few multiply-adds per dimension, nothing against the encoder, and FLOP figures
        # written before the bi-encoder existed stay comparable.
        return 2 * width * num_labels

    @torch.no_grad()
    def sliced_state(self, pooled: Tensor | None) -> dict[str, Tensor]:
        """Reading the kept pooled dimensions (None: all of them): a cosine reads any width, the
        [u, v, |u - v|] layer loses the same columns in each of its three blocks."""
        state = {k: v.detach() for k, v in self.state_dict().items()}
        if pooled is None or self.kind != "concat":
            return state
        columns = torch.cat([_on(pooled, self.linear.weight) + k * self.width for k in range(3)])
        return _prefixed("linear", sliced_linear(self.linear, columns=columns))

    def forward(self, pooled: Tensor) -> Tensor:
        u, v = pooled.chunk(2)
        if self.kind == "concat":
            return self.linear(torch.cat([u, v, (u - v).abs()], dim=-1))
        cosine = F.cosine_similarity(u, v, dim=-1)
        if self.kind == "regression":
            return cosine[:, None]
        z = self.scale * (cosine - self.threshold)
        return torch.stack([torch.zeros_like(z), z], dim=-1)

    def loss(self, logits: Tensor, labels: Tensor, label_range: list[float] | None) -> Tensor:
        if self.kind == "regression":
            low, high = label_range or (0.0, 1.0)
            return F.mse_loss(logits.squeeze(-1), (labels.to(logits.dtype) - low) / (high - low))
        return F.cross_entropy(logits, labels.long())


class AuxpruneForSequenceClassification(AuxprunePreTrainedModel):
    """Encoder + task head (classification, or regression when `num_labels == 1`).

    `config.head` "cross" reads one sequence (a pair encoded jointly) through a linear head;
    "bi" reads a batch of pairs stacked as [A sides; B sides] and compares their embeddings (`PairHead`).
    """

    def __init__(self, config: AuxpruneConfig):
        super().__init__(config)
        self.auxprune = AuxpruneModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        if config.head == "bi":
            self.classifier = PairHead(self.auxprune.pooled_size, config.num_labels, config.pair_classifier)
        else:
            self.classifier = LinearHead(self.auxprune.pooled_size, config.num_labels)
        self.post_init()

    @staticmethod
    def head_kind(config: AuxpruneConfig) -> str:
        """A bi-encoder's `PairHead.kind`; "linear" for a cross-encoder."""
        return PairHead.kind_of(config.num_labels, config.pair_classifier) if config.head == "bi" else "linear"

    @classmethod
    def param_count(cls, config: AuxpruneConfig) -> int:
        """Every parameter of the model `config` describes."""
        pooled, kind = AuxpruneModel.pooled_width(config), cls.head_kind(config)
        head = (LinearHead.param_count(pooled, config.num_labels) if kind == "linear"
                else PairHead.param_count(pooled, config.num_labels, kind))
        return AuxpruneModel.param_count(config) + head

    @classmethod
    def flops(cls, config: AuxpruneConfig, seq_len: int) -> int:
        """Multiply-add FLOPs of one forward pass over one sequence (see `speed.forward_flops`)."""
        pooled = AuxpruneModel.pooled_width(config)
        head = (LinearHead if cls.head_kind(config) == "linear" else PairHead).flops(pooled, config.num_labels)
        return AuxpruneModel.flops(config, seq_len) + head

    @property
    def encoder(self) -> AuxpruneModel:
        """The encoder (embeddings, layers, pooling). It is stored as `auxprune`, so its weights are saved
        under `auxprune.*`: Hugging Face's `base_model_prefix` convention, as `bert.*` in a BERT model."""
        return self.auxprune

    @property
    def is_bi_encoder(self) -> bool:
        return self.config.head == "bi"

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None, gates: Gates | None = None, output_hidden_states: bool = False,
                return_dict: bool | None = None, **_: object) -> PairClassifierOutput:
        pooled, states = self.auxprune.encode(input_ids, attention_mask, token_type_ids, gates)
        logits = self.classifier(pooled) if self.is_bi_encoder else self.classifier(self.dropout(pooled))
        loss = self.task_loss(logits, labels) if labels is not None else None
        return PairClassifierOutput(loss=loss, logits=logits, hidden_states=tuple(states) if output_hidden_states else None,
                                    embeddings=pooled)

    def task_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        if self.is_bi_encoder:
            return self.classifier.loss(logits, labels, self.config.label_range)
        return task_loss(logits, labels)

    def to_label_units(self, logits: Tensor) -> Tensor:
        """A bi-encoder's regression output (a cosine) in the label's units; other outputs unchanged."""
        return to_label_units(self.config, logits)


def to_label_units(config: AuxpruneConfig, logits: Tensor) -> Tensor:
    """A bi-encoder's regression output (a cosine) in the label's units; other outputs unchanged."""
    if config.head == "bi" and config.num_labels == 1 and config.label_range:
        low, high = config.label_range
        return low + (high - low) * logits
    return logits


def task_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy for classes, mean squared error for a single regression output."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
    return F.cross_entropy(logits, labels.long())
