"""Gate math: the closed-form keep probability and expected size agree with sampling."""

from __future__ import annotations

import torch

from auxprune.pruners.hard_concrete import (HardConcreteGates, LagrangianController, deterministic_gate, keep_probability,
                                           log_alpha_for, sample_gate)
from auxprune.structure import Dims
from auxprune.sparsity import dense_encoder_params, encoder_params, expected_encoder_params, fewest_encoder_params


def test_keep_probability_matches_sampling():
    torch.manual_seed(0)
    log_alpha = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])
    samples = sample_gate(log_alpha.expand(200_000, -1))
    empirical = (samples > 0).float().mean(0)
    assert torch.allclose(empirical, keep_probability(log_alpha), atol=0.005)
    assert samples.min() == 0 and samples.max() == 1  # stretched and clamped: exact zeros and ones occur


def test_samples_have_gradients_and_stay_in_unit_interval():
    log_alpha = torch.zeros(1000, requires_grad=True)
    z = sample_gate(log_alpha)
    z.sum().backward()
    assert ((z >= 0) & (z <= 1)).all()
    assert log_alpha.grad.abs().sum() > 0


def test_init_keep_probability_and_deterministic_gate():
    for p in (0.5, 0.9, 0.99):
        assert abs(keep_probability(torch.tensor(log_alpha_for(p))).item() - p) < 1e-6
    assert deterministic_gate(torch.tensor(-10.0)) == 0 and deterministic_gate(torch.tensor(10.0)) == 1


def test_expected_size_matches_sampled_structures():
    """E[params] in closed form equals the mean exact count of structures sampled from the gates."""
    torch.manual_seed(0)
    dims = Dims(num_layers=3, num_heads=4, head_dim=8, ffn_size=20, hidden_size=16)
    gates = HardConcreteGates(dims)
    with torch.no_grad():
        for la in gates.log_alpha.values():
            la.normal_(0.5, 1.5)
    expected = expected_encoder_params(gates.keep_probabilities(), dims).item()
    totals = []
    for _ in range(4000):
        z = {f: v > 0 for f, v in gates.sample().items()}
        hidden = int(z["hidden"].sum())
        heads = [int(z["heads"][l].sum()) * int(z["attn_block"][l]) for l in range(3)]
        units = [int(z["ffn_units"][l].sum()) * int(z["ffn_block"][l]) for l in range(3)]
        # The closed form counts a block's bias and LayerNorm whenever the block gate is open.
        total = 0
        for l in range(3):
            if z["attn_block"][l]:
                total += 4 * heads[l] * 8 * hidden + 3 * heads[l] * 8 + 3 * hidden
            if z["ffn_block"][l]:
                total += 2 * units[l] * hidden + units[l] + 3 * hidden
        totals.append(total)
    mean = sum(totals) / len(totals)
    assert abs(mean - expected) / expected < 0.02


def test_dense_count_formula():
    dims = Dims(num_layers=6, num_heads=12, head_dim=32, ffn_size=1536, hidden_size=384)
    per_layer = (4 * 384 * 384 + 4 * 384 + 2 * 384) + (2 * 384 * 1536 + 1536 + 384 + 2 * 384)
    assert dense_encoder_params(dims) == 6 * per_layer == encoder_params([12] * 6, [1536] * 6, 384, 32)
    # MiniLM-L6's encoder layers: the size `--size-of minilm` asks for.
    assert dense_encoder_params(dims) == 10_646_784


def test_fewest_parameters_the_gated_families_reach():
    dims = Dims(num_layers=2, num_heads=4, head_dim=8, ffn_size=37, hidden_size=32)
    assert fewest_encoder_params(dims, ["heads", "ffn_units"]) == 0  # every block can go
    assert fewest_encoder_params(dims, ["attn_block"]) == encoder_params([0, 0], [37, 37], 32, 8)
    assert fewest_encoder_params(dims, ["hidden"]) == encoder_params([4, 4], [37, 37], 1, 8) == 682


def test_lagrangian_pushes_towards_target():
    controller = LagrangianController(target=0.5, warmup_steps=10)
    assert controller.target_at(0) == 0 and controller.target_at(5) == 0.25 and controller.target_at(50) == 0.5
    optimizer = torch.optim.Adam(controller.parameters(), lr=0.1, maximize=True)
    sparsity = torch.tensor(0.2)
    for _ in range(20):
        controller.penalty(sparsity, 100).backward()
        optimizer.step()
        optimizer.zero_grad()
    # Below target: ascent drives lambda1 negative, so minimising the penalty raises sparsity.
    assert controller.lambda1.item() < 0
    s = torch.tensor(0.2, requires_grad=True)
    controller.penalty(s, 100).backward()
    assert s.grad.item() < 0


def test_pruner_draws_say_which_sublayers_exist_unless_told_to_run_them():
    from auxprune.config import build_config, parse_assignment
    from auxprune.pruners import PRUNERS

    hard_concrete = PRUNERS["hard_concrete"]

    dims = Dims(num_layers=3, num_heads=4, head_dim=8, ffn_size=20, hidden_size=16)
    config = build_config(overrides=[parse_assignment("prune.families=[heads,ffn_units]")])
    pruner = hard_concrete(dims, config.prune, 100)
    with torch.no_grad():
        pruner.gate_set.log_alpha["heads"][1] = -10.0  # layer 1's heads: closed in every draw
    torch.manual_seed(0)
    drawn, noise_free = pruner.gates(), pruner.eval_gates()
    for gates in (drawn, noise_free):
        assert gates["heads"][1].eq(0).all()
        assert gates["attn_block_keep"].tolist() == [True, False, True]
        assert gates["ffn_block_keep"].all()
        assert gates["attn_block_keep"].device.type == "cpu"
    assert pruner.twin().gates()["attn_block_keep"].shape == (3,)
    cofi = hard_concrete(dims, build_config(overrides=[parse_assignment("prune.skip_empty_sublayers=false")]).prune, 100)
    assert not any(name.endswith("_keep") for name in cofi.gates() | cofi.eval_gates())
