"""Run an exported ONNX file (fp32 or int8) with onnxruntime, with what it needs saved inside it.

`auxprune export` writes, beside the graph, the model's `config.json` and its tokenizer files as
ONNX metadata (`metadata_props`): one `.onnx` file is everything `auxprune eval` and
`auxprune predict` need, so the dev metric measured is that of exactly the file that ships,
and nothing next to it can go missing or be swapped. Keys:

| key | value |
|---|---|
| `auxprune.format` | `1` |
| `auxprune.config` | the model's config.json (structure, task, labels, `max_seq_len`) |
| `auxprune.tokenizer` | JSON object: tokenizer file name -> base64 content, as `save_pretrained` wrote them |
| `auxprune.precision` | `fp32` or `int8` |
| `auxprune.quantization` | JSON of the int8 settings (int8 files only) |
| `auxprune.source` | the model folder it was exported from |
| `auxprune.pair_head` | a bi-encoder's pair head: JSON of its values (`{}` for regression, `scale` and `threshold` for the cosine classifier) |

`OnnxForSequenceClassification` wraps a session as a module with the PyTorch model's call
signature (`model(input_ids=..., attention_mask=..., token_type_ids=...).logits`), so prediction
and evaluation code runs on it unchanged. `OnnxBiEncoder` does the same for a bi-encoder's graph
(unit-length sentence embeddings): it encodes the batch's A and B sides with the session and
applies the pair head saved in the file, so the dev metric of the graph that ships (fp32 or int8)
is measured as the PyTorch model's is. The head compares unit-length embeddings, which is exact
for the cosine heads (regression, `cosine` classifier); the `concat` classifier reads the
embeddings before normalization, so its file gives embeddings only.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from transformers.modeling_outputs import SequenceClassifierOutput

from auxprune.errors import UserError
from auxprune.export import EMBEDDING_OUTPUT, OUTPUT_NAME
from auxprune.model.inputs import MODEL_INPUTS

FORMAT = "1"
KEY_FORMAT, KEY_CONFIG, KEY_TOKENIZER = "auxprune.format", "auxprune.config", "auxprune.tokenizer"
KEY_PRECISION, KEY_QUANTIZATION, KEY_SOURCE = "auxprune.precision", "auxprune.quantization", "auxprune.source"
KEY_PAIR_HEAD = "auxprune.pair_head"
COSINE_HEADS = ("regression", "cosine")  # pair heads that read only the cosine: exact on unit-length embeddings


def is_onnx_file(path: str | Path) -> bool:
    return str(path).lower().endswith(".onnx")


# -------------------------------------------------------------------------------------- metadata

def tokenizer_files(tokenizer) -> dict[str, str]:
    """The files `tokenizer.save_pretrained` writes, as name -> base64 content."""
    with tempfile.TemporaryDirectory(prefix="auxprune-tok-") as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: base64.b64encode(p.read_bytes()).decode("ascii") for p in sorted(Path(tmp).iterdir()) if p.is_file()}


def export_metadata(model, tokenizer, source: str | Path, precision: str = "fp32") -> dict[str, str]:
    """What `auxprune eval`/`predict` need to run the file alone: config, tokenizer, a bi-encoder's pair head."""
    config = model.config
    metadata = {KEY_FORMAT: FORMAT, KEY_CONFIG: config.to_json_string(use_diff=False),
                KEY_TOKENIZER: json.dumps(tokenizer_files(tokenizer)), KEY_PRECISION: precision, KEY_SOURCE: str(source)}
    if getattr(config, "head", "cross") == "bi" and model.classifier.kind in COSINE_HEADS:
        values = {name: value.detach().float().cpu().tolist() for name, value in model.classifier.state_dict().items()}
        metadata[KEY_PAIR_HEAD] = json.dumps(values)
    return metadata


def write_metadata(path: str | Path, metadata: dict[str, str], out: str | Path | None = None) -> None:
    """Set `metadata` (replacing keys of the same name) in the ONNX file `path`, saved to `out` (default: in place)."""
    import onnx

    model = onnx.load(str(path))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    for key, value in kept + sorted(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(out or path))


def session_metadata(session) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)


# --------------------------------------------------------------------------------------- loading

def open_session(path: str | Path, threads: int | None = None, spinning: bool = True):
    """An onnxruntime session on `path`; a missing or unreadable file is a `UserError`."""
    from auxprune.export import ort_session

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: ONNX file not found; expected a file written by `auxprune export`")
    try:
        return ort_session(path, threads=threads, spinning=spinning)
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
        from auxprune.model.loading import one_line

        raise UserError(f"{path}: not a readable ONNX model ({one_line(err)})") from err


def auxprune_metadata(path: Path, session) -> dict[str, str]:
    """The auxprune metadata of a session's file; refuses a file that `auxprune export` did not write."""
    metadata = session_metadata(session)
    missing = [k for k in (KEY_CONFIG, KEY_TOKENIZER) if k not in metadata]
    if missing:
        raise UserError(f"{path}: not an auxprune ONNX export (no {', '.join(missing)} metadata); "
                        "expected a file written by `auxprune export MODEL_DIR --onnx OUT.onnx`")
    if metadata.get(KEY_FORMAT) != FORMAT:
        raise UserError(f"{path}: auxprune ONNX format {metadata.get(KEY_FORMAT)!r} is not supported; expected {FORMAT!r}")
    return metadata


def config_from_metadata(path: Path, metadata: dict[str, str]):
    from auxprune.model.configuration import AuxpruneConfig

    try:
        return AuxpruneConfig.from_dict(json.loads(metadata[KEY_CONFIG]))
    except (ValueError, TypeError) as err:
        raise UserError(f"{path}: the auxprune.config metadata is not a valid config ({err})") from err


def tokenizer_from_metadata(path: Path, metadata: dict[str, str]):
    from auxprune.model.loading import load_tokenizer

    try:
        files = json.loads(metadata[KEY_TOKENIZER])
        contents = {name: base64.b64decode(data) for name, data in files.items()}
    except (ValueError, TypeError, AttributeError) as err:
        raise UserError(f"{path}: the auxprune.tokenizer metadata is unreadable ({err})") from err
    with tempfile.TemporaryDirectory(prefix="auxprune-tok-") as tmp:
        for name, data in contents.items():
            if Path(name).name != name:
                raise UserError(f"{path}: the auxprune.tokenizer metadata names a file outside its folder ({name!r})")
            (Path(tmp) / name).write_bytes(data)
        try:
            return load_tokenizer(Path(tmp))
        except UserError as err:
            raise UserError(f"{path}: the tokenizer saved in the file does not load ({err})") from err


def check_inputs(path: Path, session, tokenizer, config) -> None:
    """The graph takes exactly what the tokenizer produces (int64 batch x sequence) and returns logits
    (a bi-encoder's: sentence embeddings)."""
    inputs = {i.name: i for i in session.get_inputs()}
    if set(inputs) != set(MODEL_INPUTS):
        raise UserError(f"{path}: the graph's inputs ({', '.join(inputs)}) do not match the tokenizer's "
                        f"({', '.join(MODEL_INPUTS)}); expected a graph written by `auxprune export`")
    for name, info in inputs.items():
        if info.type != "tensor(int64)" or len(info.shape) != 2:
            raise UserError(f"{path}: graph input {name} is {info.type} of rank {len(info.shape)}; the tokenizer "
                            "gives int64 batch x sequence")
    outputs = [o.name for o in session.get_outputs()]
    expected = EMBEDDING_OUTPUT if getattr(config, "head", "cross") == "bi" else OUTPUT_NAME
    if expected not in outputs:
        raise UserError(f"{path}: the graph has no '{expected}' output (outputs: {', '.join(outputs)}), which its config "
                        f"({'a bi-encoder' if expected == EMBEDDING_OUTPUT else 'a cross-encoder'}) says it gives")
    if len(tokenizer) > config.vocab_size:
        raise UserError(f"{path}: the tokenizer has {len(tokenizer)} tokens but the graph's vocabulary has "
                        f"{config.vocab_size}; expected the tokenizer saved with this model")


class OnnxForSequenceClassification(nn.Module):
    """An onnxruntime session behind the PyTorch model's call signature; runs on the CPU.

    It has no weights of its own; one empty parameter marks the device its outputs go to (that of
    the inputs), so code written for the PyTorch model (`next(model.parameters()).device`,
    `model.eval()`) runs on it unchanged.
    """

    is_bi_encoder = False

    def __init__(self, session, config, path: str | Path, metadata: dict[str, str] | None = None):
        super().__init__()
        self.session, self.config, self.path = session, config, Path(path)
        self.precision = (metadata or {}).get(KEY_PRECISION, "fp32")
        self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def require_task_head(self) -> None:
        """Refuses (`UserError`) a file that cannot give task outputs; a cross-encoder's always can."""

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                **_: object) -> SequenceClassifierOutput:
        return SequenceClassifierOutput(logits=run_graph(self.session, OUTPUT_NAME, input_ids, attention_mask, token_type_ids))


def run_graph(session, output: str, input_ids: Tensor, attention_mask: Tensor | None = None,
              token_type_ids: Tensor | None = None) -> Tensor:
    """The graph's `output` for tokenizer tensors (no mask: every token; no segments: segment 0), on the inputs' device."""
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    feeds = {name: t.detach().cpu().numpy().astype(np.int64)
             for name, t in zip(MODEL_INPUTS, (input_ids, attention_mask, token_type_ids))}
    return torch.from_numpy(session.run([output], feeds)[0]).to(input_ids.device)


class OnnxEncoder(nn.Module):
    """A bi-encoder graph as the encoder half of the PyTorch model: `encode(...)` gives its (unit-length)
    sentence embeddings, so `auxprune embed` and the pair head run on it as on the PyTorch encoder."""

    def __init__(self, session, pooled_size: int):
        super().__init__()
        self.session, self.pooled_size = session, pooled_size
        self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
               *_: object) -> tuple[Tensor, None]:
        return run_graph(self.session, EMBEDDING_OUTPUT, input_ids, attention_mask, token_type_ids), None


class OnnxBiEncoder(OnnxForSequenceClassification):
    """A bi-encoder's ONNX graph behind the PyTorch model's call signature: the batch holds every A side,
    then every B side (as `data.batching` lays it out); the graph embeds them and the pair head saved in
    the file compares them. Without a saved head (the `concat` classifier), it gives embeddings only."""

    is_bi_encoder = True

    def __init__(self, session, config, path: str | Path, metadata: dict[str, str] | None = None):
        super().__init__(session, config, path, metadata)
        from auxprune.model.encoder import AuxpruneModel, PairHead

        self.encoder = OnnxEncoder(session, AuxpruneModel.pooled_width(config))
        self.classifier = None
        head = (metadata or {}).get(KEY_PAIR_HEAD)
        if head is not None:
            self.classifier = PairHead(self.encoder.pooled_size, config.num_labels, config.pair_classifier)
            try:
                values = {name: torch.tensor(value) for name, value in json.loads(head).items()}
                self.classifier.load_state_dict(values)
            except (ValueError, TypeError, RuntimeError) as err:
                raise UserError(f"{self.path}: the {KEY_PAIR_HEAD} metadata does not fit the model's pair head ({err})") from err

    def require_task_head(self) -> None:
        if self.classifier is None:
            raise UserError(f"{self.path}: a bi-encoder with the {self.config.pair_classifier} classifier, which reads "
                            "embeddings before normalization; this graph gives unit-length embeddings only "
                            "(`auxprune embed`); evaluate or predict with its model folder")

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                **_: object) -> SequenceClassifierOutput:
        from auxprune.model.encoder import PairClassifierOutput

        self.require_task_head()
        embeddings, _ = self.encoder.encode(input_ids, attention_mask, token_type_ids)
        return PairClassifierOutput(logits=self.classifier(embeddings), embeddings=embeddings)

    def to_label_units(self, logits: Tensor) -> Tensor:
        from auxprune.model.encoder import to_label_units

        return to_label_units(self.config, logits)


def load_onnx(path: str | Path, threads: int | None = None):
    """(model, tokenizer) from an auxprune ONNX export: the session wrapped as a module, the tokenizer saved in it."""
    path = Path(path)
    session = open_session(path, threads=threads)
    metadata = auxprune_metadata(path, session)
    config = config_from_metadata(path, metadata)
    tokenizer = tokenizer_from_metadata(path, metadata)
    check_inputs(path, session, tokenizer, config)
    return wrap_session(session, config, path, metadata).eval(), tokenizer


def wrap_session(session, config, path: str | Path, metadata: dict[str, str] | None = None) -> OnnxForSequenceClassification:
    """The module for a checked session: `OnnxBiEncoder` for a bi-encoder's graph, else `OnnxForSequenceClassification`."""
    kind = OnnxBiEncoder if getattr(config, "head", "cross") == "bi" else OnnxForSequenceClassification
    return kind(session, config, path, metadata)
