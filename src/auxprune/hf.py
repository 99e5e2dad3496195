"""Hugging Face Auto-class registration, done once by `import auxprune`.

After `import auxprune`, a saved model folder (a run's `model/`) loads with the usual classes:

    import auxprune
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, pipeline

    AutoConfig.from_pretrained("runs/rte/model")                          # AuxpruneConfig
    AutoModelForSequenceClassification.from_pretrained("runs/rte/model")  # the model with its task head
    AutoModel.from_pretrained("runs/rte/model")                           # the encoder + pooling only
    pipeline("text-classification", model="runs/rte/model")               # the tokenizer is in the folder

The pipeline tokenizes without truncation unless asked; a text longer than the model's position
embeddings (`config.max_seq_len` tokens, as in training) needs
`pipe(texts, truncation=True, max_length=config.max_seq_len)`. `auxprune.predict` truncates by itself.
A regression model (`problem_type` "regression") gives its raw value as the pipeline's `score`.

`AutoModel` gives `AuxpruneModel`, whose forward returns Hugging Face's `BaseModelOutputWithPooling`:
`last_hidden_state` (the token states, what sentence-transformers pools) and `pooler_output`, the
pooled sentence vector (batch x pooled size, pooled as the model was trained: mean, [CLS] or
pooler); `model.encode(...)` gives `(pooled, hidden_states)` directly.

Only the config and model classes are imported here, nothing else of auxprune.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from auxprune.model.configuration import AuxpruneConfig
from auxprune.model.encoder import AuxpruneForSequenceClassification, AuxpruneModel


def register() -> None:
    """Register the config and model classes with the Auto classes (safe to call more than once)."""
    AutoConfig.register(AuxpruneConfig.model_type, AuxpruneConfig, exist_ok=True)
    AutoModel.register(AuxpruneConfig, AuxpruneModel, exist_ok=True)
    AutoModelForSequenceClassification.register(AuxpruneConfig, AuxpruneForSequenceClassification, exist_ok=True)


register()
