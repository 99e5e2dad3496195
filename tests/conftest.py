"""Shared fixtures: tiny random models (the Hugging Face test pattern), tiny saved runs, and the shared data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast, MPNetConfig, MPNetModel

from auxprune import precision
from auxprune.structure import Dims
from auxprune.model.configuration import AuxpruneConfig
from auxprune.model.encoder import AuxpruneForSequenceClassification
from auxprune.model.loading import load_tokenizer
from auxprune.output import save_model
from auxprune.surgery import cut

TINY = dict(vocab_size=99, hidden_size=32, head_dim=8, layer_heads=[4, 4], layer_ffn=[37, 37],
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
# The MPNet switches on top of TINY (`tiny_model(**MPNET)`): no segments, positions from 2, the position bias.
MPNET = dict(type_vocab_size=0, relative_attention_num_buckets=32, position_offset=2, max_position_embeddings=66,
             pad_token_id=1)
ARCHITECTURES = {"bert": {}, "mpnet": MPNET}


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
        bias = model.auxprune.embeddings.relative_attention_bias
        if bias is not None:  # large enough to change which keys a head attends to
            bias.weight.normal_(0, 1)
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


def write_tiny_bert(path, sentence_transformers: bool = False, seed: int = 0, dropout: float = 0.1):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    model = BertModel(config).eval()
    model.save_pretrained(path)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + letters + [f"##{c}" for c in letters]
    # transformers 5 ignores vocab_file here; the vocabulary must be passed as a mapping.
    BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(path)
    if sentence_transformers:
        (path / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "x"}]))
        (path / "1_Pooling").mkdir()
        (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    return model


def write_tiny_mpnet(path, seed: int = 0) -> MPNetModel:
    """A tiny random MPNet folder (hidden 32, 2 layers, 4 heads), with the tiny BERT's tokenizer files."""
    write_tiny_bert(path)
    for name in ("model.safetensors", "config.json"):
        (path / name).unlink()
    torch.manual_seed(seed)
    config = MPNetConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=37, max_position_embeddings=66)
    model = MPNetModel(config).eval()
    with torch.no_grad():
        model.encoder.relative_attention_bias.weight.normal_(0, 1)  # the default init would hide a wrong bias
    model.save_pretrained(path)
    return model


RTE_LABELS = {0: "entailment", 1: "not_entailment"}


def letter_tokenizer(path):
    """The tiny BERT folder, with a letter-level tokenizer: letters, '##' letters, digits, punctuation.

    Real sentences become many distinct ids (letter by letter). The vocabulary is passed as a
    dict: transformers 5's BertTokenizerFast ignores `vocab_file=` and would keep only the 5
    special tokens, turning every word into [UNK].
    """
    write_tiny_bert(path)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz")
    tokens += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("0123456789") + list(".,;:'\"!?-()$%")
    BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}).save_pretrained(path)
    tokenizer = load_tokenizer(path)
    assert len(tokenizer) == len(tokens) <= 99
    return tokenizer


def save_pruned(folder, tokenizer, *, pooling: str = "mean", num_labels: int = 2, drop_attention: bool = False,
                head_scale: float = 1.0, seed: int = 0, **config):
    """A tiny random model, cut (layer 0 loses its FFN block and 3 heads, 4 hidden dims go), saved as a run.

    Returns the cut model; the run folder gets `model/` and, as `teacher/`, the dense model.
    """
    labels = {"id2label": RTE_LABELS} if num_labels == 2 else {}
    problem = {"problem_type": "regression"} if num_labels == 1 else {}
    model = tiny_model(pooling=pooling, num_labels=num_labels, seed=seed, **labels, **problem, **config)
    with torch.no_grad():
        model.classifier.weight.mul_(head_scale)  # spread the outputs so that both labels come out
    small = cut(model, sample_masks(model, drop_attention)).eval()
    save_model(small, tokenizer, folder / "model")
    save_model(model, tokenizer, folder / "teacher")
    return small


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return letter_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def run(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("run")
    save_pruned(folder, tokenizer, head_scale=30.0)
    return folder


@pytest.fixture(scope="session", autouse=True)
def fp32_on_every_machine():
    """The tests see a CPU without bf16 hardware, so that they compute and print the same on every machine
    (`train.precision=auto` picks bf16 on one that has it, and an fp32 run there prints a hint); the tests of
    those say which CPU they want. Yields the real reader."""
    real = precision.cpu_has_native_bf16
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(precision, "cpu_has_native_bf16", lambda: False)
        yield real


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny random BERT saved as a Hugging Face folder (config, safetensors, tokenizer)."""
    path = tmp_path_factory.mktemp("tiny_bert")
    write_tiny_bert(path)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    env = os.environ.get("AUXPRUNE_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    assert (path / "glue").is_dir(), f"shared data not found at {path}; set AUXPRUNE_DATA_DIR"
    return path
