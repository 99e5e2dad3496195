"""BERT (`model_type` "bert"): the reference key map; positions from 0, segment embeddings, optional pooler."""

from auxprune.model.adapters import Adapter, register


class BertAdapter(Adapter):
    model_type = "bert"


register(BertAdapter())
