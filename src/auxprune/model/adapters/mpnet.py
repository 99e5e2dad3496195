"""MPNet (`model_type` "mpnet", e.g. all-mpnet-base-v2): BERT's layer with other key names, no
segment embeddings, positions numbered from padding_idx + 1 (as RoBERTa), and a relative position
bias (`encoder.relative_attention_bias`: 32 buckets x heads) added to every layer's attention
scores. The bias becomes `embeddings.relative_attention_bias`: counted with the embeddings, kept
whole when heads are cut (each cut layer reads its kept heads' rows, `config.layer_head_ids`).
"""

from auxprune.errors import UserError
from auxprune.model.adapters import Adapter, register

BUCKETS = 32  # transformers' MPNet computes 32 buckets whatever its config says


class MPNetAdapter(Adapter):
    model_type = "mpnet"
    layer_keys = {
        "attention.attn.q": "attention.query", "attention.attn.k": "attention.key",
        "attention.attn.v": "attention.value", "attention.attn.o": "attention.output",
        "attention.LayerNorm": "attention.LayerNorm", "intermediate.dense": "ffn.intermediate",
        "output.dense": "ffn.output", "output.LayerNorm": "ffn.LayerNorm",
    }

    def position_offset(self, hf: dict) -> int:
        return 2  # transformers' MPNet fixes its padding_idx at 1, whatever pad_token_id says

    def rename(self, key: str) -> str | None:
        if key == "encoder.relative_attention_bias.weight":
            return "auxprune.embeddings.relative_attention_bias.weight"
        return super().rename(key)

    def architecture(self, hf: dict, where: object) -> dict:
        buckets = hf.get("relative_attention_num_buckets", BUCKETS)
        if buckets != BUCKETS:
            raise UserError(f"{where}: relative_attention_num_buckets is {buckets!r}; expected {BUCKETS}, the "
                            "number transformers' MPNet computes")
        return {"type_vocab_size": 0, "relative_attention_num_buckets": BUCKETS}


register(MPNetAdapter())
