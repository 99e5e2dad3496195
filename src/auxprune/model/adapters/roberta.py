"""RoBERTa (`model_type` "roberta"): BERT's keys; positions numbered from padding_idx + 1."""

from auxprune.model.adapters import Adapter, register


class RobertaAdapter(Adapter):
    model_type = "roberta"

    def position_offset(self, hf: dict) -> int:
        return hf.get("pad_token_id", 1) + 1


register(RobertaAdapter())
