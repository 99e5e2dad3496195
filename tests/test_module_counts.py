"""Modules count their own parameters and FLOPs: the formulas equal the real tensors, and the numbers
the sparsity controller, the report and the speed benchmark read are the ones they were before the
formulas moved into the modules (pinned below)."""

from __future__ import annotations

import random

import pytest
import torch

from auxprune.model.configuration import AuxpruneConfig
from auxprune.model.encoder import (Attention, AuxpruneForSequenceClassification, Embeddings, FeedForward, Layer,
                                    LinearHead, PairHead, Pooler)
from auxprune.pruners.hard_concrete import HardConcreteGates
from auxprune.sparsity import count_parameters, encoder_params, expected_encoder_params, expected_sparsity
from auxprune.speed import forward_flops
from auxprune.structure import Dims
from auxprune.surgery import cut
from conftest import MPNET, TINY, tiny_model
from test_surgery import CASES, random_masks


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def random_config(seed: int) -> AuxpruneConfig:
    """A pruned-looking structure: per-layer heads and units (some 0), a kept hidden width, any head."""
    rng = random.Random(seed)
    layers = rng.randint(1, 4)
    heads = [rng.choice([0, 1, 2, 3, 4]) for _ in range(layers)]
    mpnet = MPNET if seed % 2 else {}
    head = rng.choice([{"head": "cross"}, {"head": "bi", "pair_classifier": "concat"}, {"head": "bi"}])
    num_labels = 2 if head.get("head") == "bi" and "pair_classifier" not in head else rng.choice([1, 2, 3])
    extra = {"layer_head_ids": [sorted(rng.sample(range(4), n)) for n in heads]} if mpnet else {}
    structure = dict(hidden_size=rng.randint(3, 40), layer_heads=heads,
                     layer_ffn=[rng.choice([0, 1, 17, 37]) for _ in range(layers)], original_num_heads=4,
                     original_hidden_size=40, original_ffn_size=37, num_labels=num_labels,
                     pooling=rng.choice(["mean", "cls", "pooler"]), pooler_size=rng.choice([None, 24]))
    return AuxpruneConfig(**{**TINY, **mpnet, **head, **extra, **structure})


@pytest.mark.parametrize("seed", range(12))
def test_each_module_counts_its_own_parameters(seed):
    config = random_config(seed)
    model = AuxpruneForSequenceClassification(config)
    encoder = model.auxprune
    assert Embeddings.param_count(config, config.hidden_size) == _numel(encoder.embeddings)
    for index, layer in enumerate(encoder.layers):
        heads, units = config.layer_heads[index], config.layer_ffn[index]
        if layer.attention is not None:
            a = layer.attention
            assert Attention.param_count(a.num_heads, a.hidden_size, a.head_dim) == _numel(a)
        if layer.ffn is not None:
            assert FeedForward.param_count(layer.ffn.num_units, layer.ffn.hidden_size) == _numel(layer.ffn)
        assert Layer.param_count(heads, units, config.hidden_size, config.head_dim) == _numel(layer)
    if encoder.pooler is not None:
        assert Pooler.param_count(config.hidden_size, config.pooler_size) == _numel(encoder.pooler)
    head = model.classifier
    if isinstance(head, PairHead):
        assert PairHead.param_count(head.width, head.num_labels, head.kind) == _numel(head)
    else:
        assert isinstance(head, LinearHead)
        assert LinearHead.param_count(head.in_features, head.out_features) == _numel(head)
    assert AuxpruneForSequenceClassification.param_count(config) == _numel(model)
    assert encoder_params(config.layer_heads, config.layer_ffn, config.hidden_size,
                          config.head_dim) == count_parameters(model)["encoder_kept"]


@pytest.mark.parametrize("seed", range(3))
def test_cut_leaves_the_dense_model_untouched(seed):
    model = tiny_model(pooling="pooler", seed=seed, **(MPNET if seed else {}))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = cut(model, random_masks(model, seed, CASES["everything"]))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.config.is_dense and small.config.hidden_size < model.config.hidden_size
    assert AuxpruneForSequenceClassification.param_count(small.config) == _numel(small)


# forward_flops of these configs, computed by the formula speed.py had before the modules held it.
FLOPS_CONFIGS = {
    "minilm_cls": dict(hidden_size=384, head_dim=32, layer_heads=[12] * 6, layer_ffn=[1536] * 6, pooling="cls",
                       num_labels=2),
    "bert_pooler": dict(hidden_size=768, head_dim=64, layer_heads=[12] * 12, layer_ffn=[3072] * 12,
                        pooling="pooler", num_labels=3),
    "pruned_pooler": dict(hidden_size=300, head_dim=32, layer_heads=[3, 0, 12, 7], layer_ffn=[100, 1536, 0, 17],
                          pooling="pooler", pooler_size=384, num_labels=1, original_hidden_size=384),
    "bi_concat": dict(hidden_size=256, head_dim=16, layer_heads=[5, 16], layer_ffn=[64, 0], pooling="mean",
                      head="bi", pair_classifier="concat", num_labels=3),
    "mpnet_bi_regression": dict(hidden_size=768, head_dim=64, layer_heads=[12, 4, 0], layer_ffn=[3072, 0, 10],
                                pooling="mean", head="bi", num_labels=1, relative_attention_num_buckets=32,
                                type_vocab_size=0, layer_head_ids=[list(range(12)), [0, 3, 5, 11], []]),
}
OLD_FLOPS = {
    "minilm_cls": {1: 21244416, 16: 342099456, 128: 2868905472, 512: 13287556608},
    "bert_pooler": {1: 171090432, 16: 2728530432, 128: 22348435968, 512: 96637948416},
    "pruned_pooler": {1: 3907184, 16: 59723264, 128: 516538112, 512: 2619107072},
    "bi_concat": {1: 756544, 16: 12404224, 128: 118490624, 512: 738199040},
    "mpnet_bi_regression": {1: 15764992, 16: 253199872, 128: 2084308480, 512: 9142535680},
}


@pytest.mark.parametrize("name", FLOPS_CONFIGS)
def test_forward_flops_unchanged(name):
    config = AuxpruneConfig(**FLOPS_CONFIGS[name])
    assert {seq: forward_flops(config, seq) for seq in OLD_FLOPS[name]} == OLD_FLOPS[name]


def _old_expected_params(probs, dims):
    """sparsity.expected_encoder_params as it was written before the formulas moved into the modules."""
    hidden = probs["hidden"].sum()
    heads = probs["heads"].sum(-1)
    units = probs["ffn_units"].sum(-1)
    width = heads * dims.head_dim
    attention = probs["attn_block"] * (4 * width * hidden + 3 * width + hidden + 2 * hidden)
    ffn = probs["ffn_block"] * (2 * units * hidden + units + hidden + 2 * hidden)
    return (attention + ffn).sum()


# (expected sparsity, expected parameters) measured with the old code on this machine.
OLD_EXPECTED = [(0.45206499099731445, 5833746.0), (0.5873768329620361, 3589.8212890625),
                (0.4488648772239685, 46876500.0)]


def test_expected_sparsity_bit_identical():
    """The controller steers this value: training results depend on every bit of it."""
    torch.manual_seed(0)
    all_dims = (Dims(6, 12, 32, 1536, 384), Dims(3, 4, 8, 20, 16), Dims(12, 12, 64, 3072, 768))
    for dims, (sparsity, params) in zip(all_dims, OLD_EXPECTED):
        gates = HardConcreteGates(dims)
        with torch.no_grad():
            for la in gates.log_alpha.values():
                la.normal_(0.5, 1.5)
        probs = gates.keep_probabilities()
        assert torch.equal(expected_encoder_params(probs, dims), _old_expected_params(probs, dims))
        assert expected_encoder_params(probs, dims).item() == pytest.approx(params, rel=1e-6)
        assert expected_sparsity(probs, dims).item() == pytest.approx(sparsity, rel=1e-6)
