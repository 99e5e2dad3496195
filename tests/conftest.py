"""Shared fixtures: tiny random models (the Hugging Face test pattern) and the shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from auxprune.masks import Dims
from auxprune.model.configuration import AuxpruneConfig
from auxprune.model.encoder import AuxpruneForSequenceClassification

TINY = dict(vocab_size=99, hidden_size=32, head_dim=8, layer_heads=[4, 4], layer_ffn=[37, 37],
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def tiny_model(pooling: str = "mean", num_labels: int = 3, seed: int = 0, **overrides) -> AuxpruneForSequenceClassification:
    torch.manual_seed(seed)
    config = AuxpruneConfig(**{**TINY, **overrides}, pooling=pooling, num_labels=num_labels)
    model = AuxpruneForSequenceClassification(config).eval()
    # Random LayerNorm affine parameters so that folding into them is really exercised.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    return model


def tiny_dims(model: AuxpruneForSequenceClassification) -> Dims:
    c = model.config
    return Dims(c.num_hidden_layers, c.original_num_heads, c.head_dim, c.original_ffn_size, c.hidden_size)


def sample_masks(model: AuxpruneForSequenceClassification, drop_attention: bool = False):
    """A fixed pruned structure touching every family: fewer heads, FFN units and hidden dims, a removed FFN block."""
    from auxprune.structure import dense_masks

    masks = dense_masks(tiny_dims(model))
    masks.keep["heads"][0, :3] = False
    masks.keep["ffn_units"][1, ::2] = False
    masks.keep["hidden"][5:9] = False
    masks.keep["ffn_block"][0] = False
    masks.keep["ffn_units"][0] = False
    if drop_attention:
        masks.keep["attn_block"][1] = False
        masks.keep["heads"][1] = False
    return masks


def tiny_batch(batch: int = 3, seq: int = 9, vocab: int = 99, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[0, seq - 3:] = 0
    types = torch.zeros(batch, seq, dtype=torch.long)
    types[:, seq // 2:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny random BERT saved as a Hugging Face folder (config, safetensors, tokenizer)."""
    from test_model import write_tiny_bert  # test_model imports this module

    path = tmp_path_factory.mktemp("tiny_bert")
    write_tiny_bert(path)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    env = os.environ.get("AUXPRUNE_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    assert (path / "glue").is_dir(), f"shared data not found at {path}; set AUXPRUNE_DATA_DIR"
    return path
