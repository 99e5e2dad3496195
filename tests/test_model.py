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


def test_the_encoder_is_named_encoder_and_saved_under_the_base_model_prefix():
    """`model.encoder` is the encoder; its weights keep Hugging Face's `base_model_prefix` keys (`auxprune.*`),
    so saved models load as before."""
    model = tiny_model()
    assert model.encoder is model.auxprune is model.base_model
    assert model.encoder.layers and model.encoder.embeddings
    encoder_keys = [k for k in model.state_dict() if not k.startswith("classifier.")]
    assert encoder_keys and all(k.startswith("auxprune.") for k in encoder_keys)
    assert "encoder" not in dict(model.named_children())  # a name for the code, not a second module


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


def write_bert_folder(path, *, weights: str, pooler: bool, st_pooling: str | None, layers: int = 3, hidden: int = 48,
                      heads: int = 6, ffn: int = 50):
    """A BERT folder of another depth and width than the tiny one: `.bin` or safetensors weights, with or
    without a pooler, with or without sentence-transformers files (`st_pooling` the mode they name)."""
    import json

    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    write_tiny_bert(path)  # for the tokenizer files
    (path / "model.safetensors").unlink()
    torch.manual_seed(3)
    config = BertConfig(vocab_size=99, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=ffn, max_position_embeddings=64)
    reference = BertModel(config, add_pooling_layer=pooler).eval()
    reference.save_pretrained(path)
    if weights == "bin":
        torch.save(load_file(path / "model.safetensors"), path / "pytorch_model.bin")
        (path / "model.safetensors").unlink()
    if st_pooling:
        (path / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
        (path / "1_Pooling").mkdir()
        mode = st_pooling.removeprefix("st5-")
        (path / "1_Pooling" / "config.json").write_text(json.dumps(
            # sentence-transformers >= 5 writes one pooling_mode field; folders saved before, one key per mode
            {"embedding_dimension": hidden, "pooling_mode": mode, "include_prompt": True}
            if st_pooling.startswith("st5-") else
            {"word_embedding_dimension": hidden, "pooling_mode_cls_token": mode == "cls",
             "pooling_mode_mean_tokens": mode == "mean", "pooling_mode_max_tokens": mode == "max"}))
    return reference


@pytest.mark.parametrize("weights, pooler, st_pooling, mode, why", [
    ("safetensors", True, None, "pooler", "checkpoint has pooler weights"),
    ("bin", False, None, "cls", "no pooler weights"),
    ("bin", True, "mean", "mean", "1_Pooling/config.json sets pooling_mode_mean_tokens"),
    ("safetensors", False, "cls", "cls", "1_Pooling/config.json sets pooling_mode_cls_token"),
    ("safetensors", True, "st5-mean", "mean", "1_Pooling/config.json sets pooling_mode 'mean'"),
    ("safetensors", False, "st5-cls", "cls", "1_Pooling/config.json sets pooling_mode 'cls'"),
])
def test_any_bert_folder_loads_with_the_pooling_it_was_trained_with(tmp_path, weights, pooler, st_pooling, mode, why):
    """Other depths and widths, `.bin` (read with weights_only) or safetensors, with or without pooler and
    sentence-transformers files: same hidden states as transformers, the pooling chosen and why."""
    from auxprune.model.loading import load_pretrained

    reference = write_bert_folder(tmp_path, weights=weights, pooler=pooler, st_pooling=st_pooling)
    assert (tmp_path / "pytorch_model.bin").is_file() == (weights == "bin")
    model, _, chosen = load_pretrained(tmp_path, num_labels=2)
    assert (chosen.mode, model.config.pooling) == (mode, mode) and why in chosen.why
    assert model.config.layer_heads == [6] * 3 and model.config.hidden_size == 48 and model.config.head_dim == 8
    batch = tiny_batch()
    with torch.no_grad():
        pooled, states = model.eval().auxprune.encode(**batch)
        expected = reference(**batch)
    last = expected.last_hidden_state
    kept = batch["attention_mask"].bool()
    assert (states[-1][kept] - last[kept]).abs().max() < 1e-5
    weights_ = batch["attention_mask"][..., None].float()
    reference_pooled = {"pooler": expected.pooler_output, "cls": last[:, 0],
                        "mean": (last * weights_).sum(1) / weights_.sum(1)}[mode]
    assert (pooled - reference_pooled).abs().max() < 1e-5
    configured, _, given = load_pretrained(tmp_path, num_labels=2, pooling="mean")
    assert configured.config.pooling == "mean" and given.why == "model.pooling=mean as configured"
