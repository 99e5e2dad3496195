"""Model folders that load without auxprune: the modeling code saved beside the weights.

Hugging Face's convention for custom architectures: the folder holds the Python files that define
the config and model classes, and `config.json` names them in `auto_map`. Then, with only torch
and transformers installed,

    from transformers import AutoModelForSequenceClassification, pipeline
    model = AutoModelForSequenceClassification.from_pretrained("runs/stsb/model", trust_remote_code=True)
    pipe = pipeline("text-classification", model="runs/stsb/model", trust_remote_code=True)

`save_model` calls `add_remote_code` on every folder it writes. The two files are auxprune's own
`model/configuration.py` and `model/encoder.py`, copied with the one import between them made
relative; they import nothing else of auxprune (checked here), so the folder computes exactly
what `auxprune.load` computes. With `import auxprune` (which registers the classes) the folder
loads without `trust_remote_code` too, using the installed classes.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

CONFIG_FILE, MODELING_FILE = "configuration_auxprune.py", "modeling_auxprune.py"
AUTO_MAP = {
    "AutoConfig": "configuration_auxprune.AuxpruneConfig",
    "AutoModel": "modeling_auxprune.AuxpruneModel",
    "AutoModelForSequenceClassification": "modeling_auxprune.AuxpruneForSequenceClassification",
}
_CONFIG_IMPORT = "from auxprune.model.configuration import AuxpruneConfig"


def _source(module: str) -> str:
    from importlib import import_module

    return Path(import_module(module).__file__).read_text(encoding="utf-8")


def modeling_sources() -> dict[str, str]:
    """File name -> source of the two files a folder carries."""
    config_source = _source("auxprune.model.configuration")
    modeling_source = _source("auxprune.model.encoder")
    if _CONFIG_IMPORT not in modeling_source:
        raise RuntimeError(f"auxprune.model.encoder no longer has the line {_CONFIG_IMPORT!r}; update remote_code.py")
    modeling_source = modeling_source.replace(_CONFIG_IMPORT, "from .configuration_auxprune import AuxpruneConfig")
    sources = {CONFIG_FILE: config_source, MODELING_FILE: modeling_source}
    for name, source in sources.items():
        leaked = sorted(_auxprune_imports(source))
        if leaked:
            raise RuntimeError(f"{name} would import {', '.join(leaked)}: the saved modeling code must need only "
                               "torch and transformers")
    return sources


def _auxprune_imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "auxprune"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "auxprune":
            found.add(node.module)
    return found


def add_remote_code(folder: str | Path) -> None:
    """Write the modeling files into a saved model folder and name them in its config.json `auto_map`."""
    from auxprune.output import atomic_write_text

    folder = Path(folder)
    for name, source in modeling_sources().items():
        atomic_write_text(folder / name, source)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["auto_map"] = dict(AUTO_MAP)
    atomic_write_text(config_file, json.dumps(config, indent=2, sort_keys=True) + "\n")
