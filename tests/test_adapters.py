"""Architecture adapters: every registered `model_type` computes what the Hugging Face model computes."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel, MPNetModel, RobertaConfig, RobertaModel

from auxprune.errors import UserError
from auxprune.model.adapters import ADAPTERS, adapter_for
from auxprune.model.loading import load_for_task
from conftest import tiny_batch, write_tiny_bert, write_tiny_mpnet


def _tiny_roberta(path):
    write_tiny_bert(path)  # for the tokenizer files
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=37, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1)
    model = RobertaModel(config).eval()
    for name in ("model.safetensors", "config.json"):
        (path / name).unlink()
    model.save_pretrained(path)
    return model


def _tiny_bert(path):
    return write_tiny_bert(path)


# One builder per registered model_type: a tiny random Hugging Face model saved as a folder.
REFERENCES = {"bert": _tiny_bert, "roberta": _tiny_roberta, "mpnet": write_tiny_mpnet}


def test_every_adapter_has_an_equivalence_test():
    assert set(ADAPTERS) == set(REFERENCES)


@pytest.mark.parametrize("model_type", sorted(REFERENCES))
def test_encoder_matches_the_hugging_face_model(model_type, tmp_path):
    reference = REFERENCES[model_type](tmp_path)
    assert isinstance(reference, (BertModel, RobertaModel, MPNetModel)) and reference.config.model_type == model_type
    model, _ = load_for_task(tmp_path, num_labels=2, pooling="pooler")
    batch = tiny_batch(seq=40)  # distances past MPNet's 8 exact buckets reach its logarithmic ones
    if getattr(reference.config, "type_vocab_size", 0) == 1:
        batch["token_type_ids"] = torch.zeros_like(batch["token_type_ids"])
    if model_type == "mpnet":  # no segments: our encoder ignores them, MPNetModel takes none
        assert model.auxprune.embeddings.token_type_embeddings is None
        ours = dict(batch)
        batch.pop("token_type_ids")
    else:
        ours = batch
    with torch.no_grad():
        pooled, states = model.eval().auxprune.encode(**ours)
        expected = reference(**batch)
    kept = batch["attention_mask"].bool()  # padded positions are masked out anyway
    assert (states[-1][kept] - expected.last_hidden_state[kept]).abs().max() < 1e-5
    assert (pooled - expected.pooler_output).abs().max() < 1e-5


def test_unknown_model_types_and_incomplete_configs_are_refused():
    with pytest.raises(UserError, match=r"model_type 'gpt2' is not supported; expected one of \('bert', 'mpnet', 'roberta'\)"):
        adapter_for({"model_type": "gpt2"}, "config.json")
    with pytest.raises(UserError, match="no integer hidden_size"):
        adapter_for({**BertConfig().to_dict(), "hidden_size": None}, "config.json")
