"""The model config: a Hugging Face `PretrainedConfig` that carries the per-layer structure.

A pruned model's shape is saved, never guessed from weight shapes: every layer lists how many
attention heads and FFN units it kept (0 means the whole block is gone), and `hidden_size` is the
kept width of the residual stream. `original_*` fields remember the dense model so sparsity and
speed-ups can be computed from the saved model alone.

Architecture switches (set by the adapters in `model/adapters/`): `type_vocab_size` 0 means no
segment embeddings (MPNet); `relative_attention_num_buckets` > 0 adds MPNet's relative position
bias (one learned value per bucket and original head, added to every layer's attention scores),
and then `layer_head_ids` lists, per layer, which original heads it kept, so that each layer reads
the bias of its own heads. BERT and RoBERTa leave both at their defaults (0, None).
"""

from __future__ import annotations

from transformers import PretrainedConfig

POOLINGS = ("mean", "cls", "pooler")
HEADS = ("cross", "bi")  # a pair encoded jointly, or each side on its own and compared (sentence-transformers)
PAIR_CLASSIFIERS = ("cosine", "concat")  # a bi-encoder's classes: from the cosine, or from [u, v, |u - v|]


class AuxpruneConfig(PretrainedConfig):
    model_type = "auxprune_bert"

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 384,
        head_dim: int = 32,
        layer_heads: list[int] | None = None,
        layer_ffn: list[int] | None = None,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        position_offset: int = 0,
        layer_norm_eps: float = 1e-12,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        pooling: str = "mean",
        pooler_size: int | None = None,
        task: str | None = None,
        max_seq_len: int | None = None,
        original_hidden_size: int | None = None,
        original_num_heads: int | None = None,
        original_ffn_size: int | None = None,
        original_num_layers: int | None = None,
        pad_token_id: int = 0,
        head: str = "cross",
        pair_classifier: str = "cosine",
        label_range: list[float] | None = None,
        relative_attention_num_buckets: int = 0,
        layer_head_ids: list[list[int]] | None = None,
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        layer_heads = list(layer_heads if layer_heads is not None else [12] * 6)
        layer_ffn = list(layer_ffn if layer_ffn is not None else [1536] * 6)
        if len(layer_heads) != len(layer_ffn):
            raise ValueError("layer_heads and layer_ffn must have one entry per layer")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if pair_classifier not in PAIR_CLASSIFIERS:
            raise ValueError(f"pair_classifier must be one of {PAIR_CLASSIFIERS}, got {pair_classifier!r}")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.head_dim = head_dim
        self.layer_heads = layer_heads
        self.layer_ffn = layer_ffn
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.position_offset = position_offset
        self.layer_norm_eps = layer_norm_eps
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.pooling = pooling
        self.relative_attention_num_buckets = relative_attention_num_buckets
        if layer_head_ids is not None:
            layer_head_ids = [list(ids) for ids in layer_head_ids]
            if [len(ids) for ids in layer_head_ids] != layer_heads:
                raise ValueError("layer_head_ids must list as many heads per layer as layer_heads")
        self.layer_head_ids = layer_head_ids
        self.pooler_size = pooler_size if pooler_size is not None else hidden_size
        self.task = task
        # The sequence length the model was trained with: evaluation and export reuse it.
        self.max_seq_len = max_seq_len or self.max_positions
        self.original_hidden_size = original_hidden_size or hidden_size
        self.original_num_heads = original_num_heads or max(layer_heads, default=0)
        self.original_ffn_size = original_ffn_size or max(layer_ffn, default=0)
        self.original_num_layers = original_num_layers or len(layer_heads)
        # A bi-encoder compares the pooled embeddings of a pair's two sides (`PairHead`); a regression
        # label [low, high] is trained as a cosine in [0, 1] and predicted back in label units.
        self.head = head
        self.pair_classifier = pair_classifier
        self.label_range = list(label_range) if label_range is not None else None

    @property
    def max_positions(self) -> int:
        """The longest sequence the position embeddings can take."""
        return self.max_position_embeddings - self.position_offset

    def head_ids(self, layer: int) -> list[int]:
        """The original indices of the heads `layer` kept (its columns of the relative position bias)."""
        if self.layer_head_ids is not None:
            return self.layer_head_ids[layer]
        return list(range(self.layer_heads[layer]))

    @property
    def num_hidden_layers(self) -> int:
        return len(self.layer_heads)

    @property
    def is_dense(self) -> bool:
        return (
            self.hidden_size == self.original_hidden_size
            and all(h == self.original_num_heads for h in self.layer_heads)
            and all(f == self.original_ffn_size for f in self.layer_ffn)
        )
