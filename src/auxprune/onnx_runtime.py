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

`OnnxForSequenceClassification` wraps a session as a module with the PyTorch model's call
signature (`model(input_ids=..., attention_mask=..., token_type_ids=...).logits`), so prediction
and evaluation code runs on it unchanged.
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


def is_onnx_file(path: str | Path) -> bool:
    return str(path).lower().endswith(".onnx")


# -------------------------------------------------------------------------------------- metadata

def tokenizer_files(tokenizer) -> dict[str, str]:
    """The files `tokenizer.save_pretrained` writes, as name -> base64 content."""
    with tempfile.TemporaryDirectory(prefix="auxprune-tok-") as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: base64.b64encode(p.read_bytes()).decode("ascii") for p in sorted(Path(tmp).iterdir()) if p.is_file()}


def export_metadata(config, tokenizer, source: str | Path, precision: str = "fp32") -> dict[str, str]:
    return {KEY_FORMAT: FORMAT, KEY_CONFIG: config.to_json_string(use_diff=False), KEY_TOKENIZER: json.dumps(tokenizer_files(tokenizer)),
            KEY_PRECISION: precision, KEY_SOURCE: str(source)}


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
    """The graph takes exactly what the tokenizer produces (int64 batch x sequence) and returns logits."""
    inputs = {i.name: i for i in session.get_inputs()}
    if set(inputs) != set(MODEL_INPUTS):
        raise UserError(f"{path}: the graph's inputs ({', '.join(inputs)}) do not match the tokenizer's "
                        f"({', '.join(MODEL_INPUTS)}); expected a graph written by `auxprune export`")
    for name, info in inputs.items():
        if info.type != "tensor(int64)" or len(info.shape) != 2:
            raise UserError(f"{path}: graph input {name} is {info.type} of rank {len(info.shape)}; the tokenizer "
                            "gives int64 batch x sequence")
    outputs = [o.name for o in session.get_outputs()]
    if EMBEDDING_OUTPUT in outputs:
        raise UserError(f"{path}: a bi-encoder's graph: it gives sentence embeddings ('{EMBEDDING_OUTPUT}'), not task "
                        "predictions; evaluate or predict with its model folder, or use the graph for embeddings")
    if OUTPUT_NAME not in outputs:
        raise UserError(f"{path}: the graph has no '{OUTPUT_NAME}' output (outputs: {', '.join(outputs)})")
    if len(tokenizer) > config.vocab_size:
        raise UserError(f"{path}: the tokenizer has {len(tokenizer)} tokens but the graph's vocabulary has "
                        f"{config.vocab_size}; expected the tokenizer saved with this model")


class OnnxForSequenceClassification(nn.Module):
    """An onnxruntime session behind the PyTorch model's call signature; runs on the CPU.

    It has no weights of its own; one empty parameter marks the device its outputs go to (that of
    the inputs), so code written for the PyTorch model (`next(model.parameters()).device`,
    `model.eval()`) runs on it unchanged.
    """

    def __init__(self, session, config, path: str | Path, metadata: dict[str, str] | None = None):
        super().__init__()
        self.session, self.config, self.path = session, config, Path(path)
        self.precision = (metadata or {}).get(KEY_PRECISION, "fp32")
        self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                **_: object) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        feeds = {name: t.detach().cpu().numpy().astype(np.int64)
                 for name, t in zip(MODEL_INPUTS, (input_ids, attention_mask, token_type_ids))}
        logits = torch.from_numpy(self.session.run([OUTPUT_NAME], feeds)[0]).to(input_ids.device)
        return SequenceClassifierOutput(logits=logits)


def load_onnx(path: str | Path, threads: int | None = None):
    """(model, tokenizer) from an auxprune ONNX export: the session wrapped as a module, the tokenizer saved in it."""
    path = Path(path)
    session = open_session(path, threads=threads)
    metadata = auxprune_metadata(path, session)
    config = config_from_metadata(path, metadata)
    tokenizer = tokenizer_from_metadata(path, metadata)
    check_inputs(path, session, tokenizer, config)
    return OnnxForSequenceClassification(session, config, path, metadata).eval(), tokenizer
