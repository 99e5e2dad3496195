"""The encoder against Hugging Face BERT, save/load identity, and loading real checkpoints."""

from __future__ import annotations

import pytest
import torch

import auxprune
from auxprune.errors import UserError
from auxprune.structure import FAMILIES
from auxprune.model.loading import load_for_task
from auxprune.output import save_model
from auxprune.structure import dense_masks
from auxprune.surgery import cut
from conftest import ARCHITECTURES, sample_masks, tiny_batch, tiny_dims, tiny_model, write_tiny_bert


def test_encoder_matches_hugging_face_bert(tmp_path):
    reference = write_tiny_bert(tmp_path)
    model, _ = load_for_task(tmp_path, num_labels=2)
    model.eval()
    batch = tiny_batch()
    with torch.no_grad():
        pooled, states = model.auxprune.encode(**batch)
        expected = reference(**batch)
    assert model.config.pooling == "pooler"  # a plain BERT checkpoint uses its [CLS] pooler
    assert (states[-1] - expected.last_hidden_state).abs().max() < 1e-5
    assert (pooled - expected.pooler_output).abs().max() < 1e-5


def test_sentence_transformers_folder_asks_for_mean_pooling(tmp_path):
    write_tiny_bert(tmp_path, sentence_transformers=True)
    model, _ = load_for_task(tmp_path, num_labels=1)
    assert model.config.pooling == "mean"
    model, _ = load_for_task(tmp_path, num_labels=1, pooling="cls")
    assert model.config.pooling == "cls"


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("pooling", ["mean", "pooler"])
def test_save_then_load_is_identity(tmp_path, pooling, architecture):
    model = tiny_model(pooling=pooling, **ARCHITECTURES[architecture])
    small = cut(model, sample_masks(model))
    write_tiny_bert(tmp_path / "tok")
    from auxprune.model.loading import load_tokenizer

    save_model(small, load_tokenizer(tmp_path / "tok"), tmp_path / "run" / "model")
    loaded, tokenizer = auxprune.load(tmp_path / "run")
    assert loaded.config.layer_heads == [1, 4] and loaded.config.layer_ffn == [0, 18]
    assert loaded.config.hidden_size == 28
    saved_state, loaded_state = small.state_dict(), loaded.state_dict()
    assert saved_state.keys() == loaded_state.keys()
    assert all(torch.equal(saved_state[k], loaded_state[k]) for k in saved_state)
    batch = tiny_batch()
    with torch.no_grad():
        assert torch.equal(small.eval()(**batch).logits, loaded(**batch).logits)
    assert not list((tmp_path / "run").glob(".*tmp*"))  # no temporary leftovers


def test_bad_model_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="model folder not found"):
        load_for_task(tmp_path / "missing", num_labels=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        load_for_task(tmp_path / "empty", num_labels=2)
    write_tiny_bert(tmp_path / "broken")
    weights = tmp_path / "broken" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(UserError, match="safetensors"):
        load_for_task(tmp_path / "broken", num_labels=2)


def test_gate_families_cover_the_model():
    model = tiny_model()
    dims = tiny_dims(model)
    assert {f: tuple(dense_masks(dims).keep[f].shape) for f in FAMILIES} == {
        "attn_block": (2,), "heads": (2, 4), "ffn_block": (2,), "ffn_units": (2, 37), "hidden": (32,)}
