"""Invariants of cutting: the cut model computes what the gated model computed, counts are real."""

from __future__ import annotations

import pytest
import torch

from auxprune.pruners.hard_concrete import HardConcreteGates, final_masks
from auxprune.structure import FAMILIES
from auxprune.sparsity import count_parameters, encoder_params
from auxprune.structure import FinalMasks, dense_masks, make_consistent, sublayers_present
from auxprune.surgery import cut
from conftest import ARCHITECTURES, tiny_batch, tiny_dims, tiny_model


def random_masks(model, seed: int, drop: dict[str, float]) -> FinalMasks:
    """Random keep patterns and gate values, made consistent the way final_masks makes them."""
    g = torch.Generator().manual_seed(seed)
    masks = dense_masks(tiny_dims(model))
    for family in FAMILIES:
        shape = masks.keep[family].shape
        masks.keep[family] = torch.rand(shape, generator=g) >= drop.get(family, 0.0)
        masks.values[family] = torch.rand(shape, generator=g) * 0.8 + 0.2
    masks.keep["hidden"][0] = True  # at least one dimension survives
    make_consistent(masks.keep)
    return masks


CASES = {
    "heads": {"heads": 0.5},
    "ffn_units": {"ffn_units": 0.5},
    "hidden": {"hidden": 0.4},
    "attn_block": {"attn_block": 0.6},
    "ffn_block": {"ffn_block": 0.6},
    "whole_layer": {"attn_block": 1.0, "ffn_block": 1.0},
    "everything": {"heads": 0.3, "ffn_units": 0.5, "hidden": 0.3, "attn_block": 0.3, "ffn_block": 0.3},
}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cut_model_computes_what_gated_model_computed(case, pooling, seed, architecture):
    model = tiny_model(pooling=pooling, seed=seed, **ARCHITECTURES[architecture])
    masks = random_masks(model, seed, CASES[case])
    batch = tiny_batch(seed=seed, seq=20)
    with torch.no_grad():
        expected = model(**batch, gates=masks.as_gates()).logits
        small = cut(model, masks)
        got = small(**batch).logits
    assert (got - expected).abs().max() < 1e-5
    assert small.config.layer_heads == masks.layer_heads
    assert small.config.layer_ffn == masks.layer_ffn
    assert small.config.hidden_size == masks.hidden_kept


def test_each_cut_layer_reads_the_position_bias_of_its_own_heads():
    """MPNet: layers keep different heads; each cut layer adds its kept heads' bias rows, the bias stays whole."""
    model = tiny_model(**ARCHITECTURES["mpnet"])
    masks = random_masks(model, 0, {})
    masks.keep["heads"][0] = torch.tensor([False, True, False, True])
    masks.keep["heads"][1] = torch.tensor([True, True, True, False])
    small = cut(model, masks)
    assert small.config.layer_head_ids == [[1, 3], [0, 1, 2]]
    assert [layer.attention.head_ids for layer in small.auxprune.layers] == [[1, 3], [0, 1, 2]]
    bias = "auxprune.embeddings.relative_attention_bias.weight"
    assert torch.equal(small.state_dict()[bias], model.state_dict()[bias])
    batch = tiny_batch(seq=30)
    with torch.no_grad():
        expected = model.auxprune.encode(**batch, gates=masks.as_gates())[1][-1]
        assert (small.auxprune.encode(**batch)[1][-1] - expected).abs().max() < 1e-5
        # The bias matters: reading the first heads' rows instead gives other hidden states.
        small.auxprune.layers[0].attention.head_ids = [0, 1]
        assert (small.auxprune.encode(**batch)[1][-1] - expected).abs().max() > 1e-3  # 100x the tolerance


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("seed", range(6))
def test_counted_parameters_equal_real_parameters(seed, architecture):
    model = tiny_model(seed=seed, **ARCHITECTURES[architecture])
    masks = random_masks(model, seed, CASES["everything"])
    small = cut(model, masks)
    counts = count_parameters(small)
    c = small.config
    assert counts["encoder_kept"] == encoder_params(c.layer_heads, c.layer_ffn, c.hidden_size, c.head_dim)
    assert counts["total"] == sum(p.numel() for p in small.parameters())
    assert 1.0 - counts["encoder_kept"] / count_parameters(model)["encoder_kept"] == pytest.approx(masks.sparsity())


def test_whole_model_pruned_away_still_runs():
    model = tiny_model()
    masks = random_masks(model, 0, {"attn_block": 1.0, "ffn_block": 1.0})
    small = cut(model, masks)
    assert all(layer.attention is None and layer.ffn is None for layer in small.auxprune.layers)
    assert small(**tiny_batch()).logits.shape == (3, 3)


def test_final_masks_land_on_target_and_match_cut():
    model = tiny_model(hidden_size=64, layer_heads=[8, 8, 8], layer_ffn=[96, 96, 96], head_dim=8)
    gates = HardConcreteGates(tiny_dims(model))
    with torch.no_grad():
        for la in gates.log_alpha.values():
            la.normal_(0, 2)
    for target in (0.3, 0.6, 0.9):
        masks = final_masks(gates, target, tolerance=0.01)
        assert abs(masks.sparsity() - target) <= 0.01
        small = cut(model, masks)
        batch = tiny_batch()
        with torch.no_grad():
            assert (small(**batch).logits - model(**batch, gates=masks.as_gates()).logits).abs().max() < 1e-5


@pytest.mark.parametrize("align", [8, 16])
def test_aligned_widths_are_multiples_within_tolerance(align):
    """prune.align: heads as learned; kept FFN units (and hidden dims) multiples of N; sparsity within tolerance."""
    model = tiny_model(hidden_size=64, layer_heads=[8, 8, 8], layer_ffn=[128, 128, 128], head_dim=8)
    unaligned = 0
    for families in (["heads", "ffn_units"], ["heads", "ffn_units", "hidden"]):
        gates = HardConcreteGates(tiny_dims(model), families)
        torch.manual_seed(align)
        with torch.no_grad():
            for la in gates.log_alpha.values():
                la.normal_(1, 2)
        for target in (0.4, 0.85):
            plain = final_masks(gates, target, tolerance=0.01)
            unaligned += sum(units % align != 0 for units in plain.layer_ffn) + (plain.hidden_kept % align != 0)
            masks = final_masks(gates, target, tolerance=0.01, align=align)
            assert masks.layer_heads == plain.layer_heads
            assert all(units % align == 0 for units in masks.layer_ffn), masks.layer_ffn
            assert masks.hidden_kept % align == 0 or masks.hidden_kept == 64
            assert abs(masks.sparsity() - target) <= 0.01, (target, masks.sparsity())
            assert final_masks(gates, target, tolerance=0.01, align=1).layer_ffn == plain.layer_ffn
            small = cut(model, masks)
            batch = tiny_batch()
            with torch.no_grad():
                assert (small(**batch).logits - model(**batch, gates=masks.as_gates()).logits).abs().max() < 1e-5
    assert unaligned > 0  # the rounding had work to do


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_cut_agreement_is_exact_when_pruning_skips_empty_sublayers_and_sees_them_when_it_runs_them(architecture):
    from auxprune.surgery import cut_agreement

    model = tiny_model(seed=4, **ARCHITECTURES[architecture])
    masks = random_masks(model, 4, {"heads": 0.3, "ffn_units": 0.5, "hidden": 0.3})
    masks.keep["heads"][0] = False  # layer 0 keeps no head: the cut removes its attention sublayer
    masks.keep["attn_block"][0] = False
    for block in ("attn_block", "ffn_block"):  # not gated by the pruner below: open
        masks.values[block].fill_(1.0)
    batch = tiny_batch(seed=4, seq=12)
    small = cut(model, masks)
    exact = cut_agreement(model, masks.as_gates(), small, masks, batch)
    assert exact["embedding_cosine_min"] > 0.9999 and exact["output_max_abs_diff"] < 1e-4
    assert exact["examples"] == batch["input_ids"].shape[0]
    # Pruning's view: the gated families only, as a pruner draws them.
    drawn = {family: masks.values[family] * masks.keep[family] for family in ("heads", "ffn_units", "hidden")}
    skipped = cut_agreement(model, drawn | sublayers_present(drawn), small, masks, batch)
    assert skipped["embedding_cosine_min"] > 0.9999 and skipped["output_max_abs_diff"] < 1e-4
    run_anyway = cut_agreement(model, drawn, small, masks, batch)  # CoFi's view: layer 0's LayerNorm still runs
    assert run_anyway["embedding_cosine_min"] < 0.999
    assert model.training is False and small.training is False  # modes restored (tiny_model and cut give eval)


def test_sublayers_present_follows_units_and_blocks():
    heads = torch.tensor([[0.0, 0.0], [0.0, 0.3], [0.5, 1.0]])
    units = torch.tensor([[0.2, 0.0], [0.0, 0.0], [1.0, 1.0]])
    present = sublayers_present({"heads": heads, "ffn_units": units})
    assert present["attn_block_keep"].tolist() == [False, True, True]
    assert present["ffn_block_keep"].tolist() == [True, False, True]
    with_blocks = sublayers_present({"heads": heads, "attn_block": torch.tensor([1.0, 0.0, 0.4])})
    assert set(with_blocks) == {"attn_block_keep"}  # FFN not gated: nothing said
    assert with_blocks["attn_block_keep"].tolist() == [False, False, True]
    assert sublayers_present({"hidden": torch.ones(4)}) == {}
