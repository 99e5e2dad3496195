"""Architecture adapters: one per Hugging Face `model_type`, registered by name.

An adapter knows what is specific to one architecture family: its config.json fields, how its
weight keys map onto our encoder's modules, where its positions start, and which of the shared
encoder's architecture switches it sets (`architecture`: segment embeddings, MPNet's relative
position bias). Everything else (the encoder, pruning, surgery) is shared. Adding an architecture
is adding a file here that calls `register(...)`, plus its equivalence test against the Hugging
Face model (`tests/test_adapters.py` refuses a registered adapter without one).
"""

from __future__ import annotations

import importlib
import pkgutil

import torch
from transformers.activations import ACT2FN

from auxprune.errors import UserError
from auxprune.model.configuration import AuxpruneConfig

# config.json fields a BERT-family checkpoint must have (the rest have defaults).
REQUIRED_HF_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                      "max_position_embeddings")
EMBEDDING_KEY = "embeddings.word_embeddings.weight"


class Adapter:
    """A BERT-family architecture: the Hugging Face key map and config translation."""

    model_type = ""
    # Hugging Face layer sub-module -> ours, under encoder.layer.<i>.
    layer_keys = {
        "attention.self.query": "attention.query", "attention.self.key": "attention.key",
        "attention.self.value": "attention.value", "attention.output.dense": "attention.output",
        "attention.output.LayerNorm": "attention.LayerNorm", "intermediate.dense": "ffn.intermediate",
        "output.dense": "ffn.output", "output.LayerNorm": "ffn.LayerNorm",
    }

    def position_offset(self, hf: dict) -> int:
        """The first position index (BERT counts from 0)."""
        return 0

    def architecture(self, hf: dict, where: object) -> dict:
        """Config fields of the shared encoder's architecture switches (see `AuxpruneConfig`)."""
        return {"type_vocab_size": hf.get("type_vocab_size", 2)}

    def rename(self, key: str) -> str | None:
        """A Hugging Face key (prefix removed) -> our module key; None for keys we do not use."""
        parts = key.split(".")
        if parts[0] == "embeddings":
            return None if parts[1] == "position_ids" else "auxprune." + key
        if parts[0] == "pooler":
            return "auxprune.pooler." + ".".join(parts[2:])
        if parts[:2] != ["encoder", "layer"]:
            return None
        layer, rest = parts[2], ".".join(parts[3:])
        for source, target in self.layer_keys.items():
            if rest.startswith(source + "."):
                return f"auxprune.layers.{layer}.{target}{rest[len(source):]}"
        return None

    def convert_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Our keys for a Hugging Face state dict; its prefix is found from the embedding key, never assumed."""
        prefixes = [k[: -len(EMBEDDING_KEY)] for k in state if k.endswith(EMBEDDING_KEY)]
        if len(prefixes) != 1:
            raise UserError(f"weights: expected one '{EMBEDDING_KEY}' tensor, found {len(prefixes)}")
        prefix = prefixes[0]
        return {target: tensor for key, tensor in state.items()
                if key.startswith(prefix) and (target := self.rename(key[len(prefix):])) is not None}

    def config(self, hf: dict, *, pooling: str, num_labels: int, task: str | None,
               labels: tuple[str, ...] | None, where: object = "config.json") -> AuxpruneConfig:
        num_heads, hidden = hf["num_attention_heads"], hf["hidden_size"]
        layers = hf["num_hidden_layers"]
        label_names = {"id2label": dict(enumerate(labels))} if labels else {}
        return AuxpruneConfig(
            vocab_size=hf["vocab_size"], hidden_size=hidden, head_dim=hidden // num_heads,
            layer_heads=[num_heads] * layers, layer_ffn=[hf["intermediate_size"]] * layers,
            max_position_embeddings=hf["max_position_embeddings"], position_offset=self.position_offset(hf),
            layer_norm_eps=hf.get("layer_norm_eps", 1e-12), hidden_act=hf.get("hidden_act", "gelu"),
            hidden_dropout_prob=hf.get("hidden_dropout_prob", 0.1),
            attention_probs_dropout_prob=hf.get("attention_probs_dropout_prob", 0.1),
            pooling=pooling, task=task, num_labels=num_labels, pad_token_id=hf.get("pad_token_id", 0) or 0,
            problem_type="regression" if num_labels == 1 else "single_label_classification", **label_names,
            **self.architecture(hf, where),
        )


ADAPTERS: dict[str, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    ADAPTERS[adapter.model_type] = adapter
    return adapter


def supported_types() -> tuple[str, ...]:
    return tuple(sorted(ADAPTERS))


def adapter_for(hf: dict, where: object) -> Adapter:
    """The adapter of a config.json's `model_type`, after checking the fields the encoder is built from."""
    model_type = hf.get("model_type")
    if model_type not in ADAPTERS:
        raise UserError(f"{where}: model_type {model_type!r} is not supported; expected one of {supported_types()}")
    missing = [name for name in REQUIRED_HF_FIELDS if not isinstance(hf.get(name), int)]
    if missing:
        raise UserError(f"{where}: no integer {', '.join(missing)}; expected a complete {model_type} config.json")
    refuse_what_the_encoder_cannot_compute(hf, where)
    adapter = ADAPTERS[model_type]
    adapter.architecture(hf, where)  # an adapter refuses the settings it cannot honour
    return adapter


def refuse_what_the_encoder_cannot_compute(hf: dict, where: object) -> None:
    """One line for a config.json setting the shared encoder would silently compute differently."""
    hidden, heads = hf["hidden_size"], hf["num_attention_heads"]
    if heads < 1 or hidden % heads:
        raise UserError(f"{where}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}; "
                        "expected equal-width heads")
    act = hf.get("hidden_act", "gelu")
    if not isinstance(act, str) or act not in ACT2FN:
        raise UserError(f"{where}: hidden_act {act!r} is not a known activation; expected one of gelu, relu, "
                        "gelu_new, silu, ...")
    position_type = hf.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise UserError(f"{where}: position_embedding_type {position_type!r} is not supported; expected 'absolute'")
    for flag in ("is_decoder", "add_cross_attention"):
        if hf.get(flag):
            raise UserError(f"{where}: {flag} is true; expected an encoder (bidirectional, no cross-attention)")


for _module in pkgutil.iter_modules(__path__):  # every file here registers its adapter
    importlib.import_module(f"{__name__}.{_module.name}")
