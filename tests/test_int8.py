"""Int8 ONNX export (dynamic quantization), and eval / predict on ONNX files with onnxruntime."""

from __future__ import annotations

import json
import sys

import onnx
import pytest
import torch

import auxprune
from auxprune.cli import main
from auxprune.evaluate import evaluate_saved
from auxprune.onnx_runtime import KEY_PRECISION, KEY_QUANTIZATION, load_onnx
from conftest import save_pruned

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer, data_dir):
    """A tiny RTE run, its fp32 export and its int8 export (from the model folder)."""
    root = tmp_path_factory.mktemp("int8")
    save_pruned(root, tokenizer, head_scale=30.0, task="glue/rte")
    assert main(["export", str(root), "--onnx", str(root / "fp32.onnx"), "--json"]) == 0
    assert main(["export", str(root), "--onnx", str(root / "int8" / "model.onnx"), "--int8", "--data-dir", str(data_dir),
                 "--check-examples", "64", "--json"]) == 0
    return root


def _json_out(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_int8_export_is_checked_against_fp32_on_dev_inputs(tmp_path, tokenizer, data_dir, capsys):
    save_pruned(tmp_path, tokenizer, head_scale=30.0, task="glue/rte")
    out = tmp_path / "deploy" / "model.int8.onnx"
    assert main(["export", str(tmp_path), "--onnx", str(out), "--int8", "--data-dir", str(data_dir),
                 "--check-examples", "40", "--json"]) == 0
    result = _json_out(capsys)
    check = result["check"]
    assert check["inputs"] == "glue/rte dev, first 40 examples" and check["examples"] == 40
    assert check["reference"] == "fp32 PyTorch"
    assert check["agreement"] >= 0.9 and 0 < check["max_abs_diff"] < 0.5
    assert result["quantization"]["per_channel"] is True and result["bytes"] == out.stat().st_size
    metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert metadata[KEY_PRECISION] == "int8" and json.loads(metadata[KEY_QUANTIZATION])["method"] == "dynamic"
    assert {n.op_type for n in onnx.load(str(out)).graph.node} >= {"MatMulInteger", "DynamicQuantizeLinear"}
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.int8.onnx"]  # no temporary files left


def test_int8_from_an_fp32_export_and_without_task_data(exported, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUXPRUNE_DATA_DIR", str(tmp_path / "no_data"))
    out = tmp_path / "again.onnx"
    assert main(["export", str(exported / "fp32.onnx"), "--onnx", str(out), "--int8", "--per-tensor", "--json"]) == 0
    result = _json_out(capsys)
    check = result["check"]
    assert result["quantization"]["per_channel"] is False
    assert check["reference"] == "fp32 onnxruntime" and check["inputs"].startswith("random tokens")


def test_eval_and_predict_run_the_onnx_file(exported, data_dir, capsys):
    torch_result = evaluate_saved(exported, data_dir=str(data_dir))
    fp32 = evaluate_saved(exported / "fp32.onnx", data_dir=str(data_dir))
    assert fp32["runtime"] == "onnxruntime" and fp32["precision"] == "fp32"
    assert fp32["metrics"]["accuracy"] == pytest.approx(torch_result["metrics"]["accuracy"], abs=1e-9)
    assert main(["eval", str(exported / "int8" / "model.onnx"), "--data-dir", str(data_dir), "--json"]) == 0
    int8 = _json_out(capsys)
    assert int8["precision"] == "int8" and int8["dev_examples"] == torch_result["dev_examples"]
    assert abs(int8["metrics"]["accuracy"] - torch_result["metrics"]["accuracy"]) <= 0.05
    texts, pairs = ["a cat sat on the mat.", "it rains", "no way!"], ["a cat sits.", "it is dry", "yes"]
    expected = auxprune.predict(exported, texts, pairs)
    got = auxprune.predict(exported / "fp32.onnx", texts, pairs)
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    assert [g["score"] for g in got] == pytest.approx([e["score"] for e in expected], abs=1e-5)
    assert main(["predict", str(exported / "int8" / "model.onnx"), "a cat sat.", "a cat sits.", "--json"]) == 0
    assert set(_json_out(capsys)) == {"label", "score"}
    model, tokenizer = load_onnx(exported / "fp32.onnx")  # config and tokenizer come from the file itself
    assert model.config.task == "glue/rte" and len(tokenizer) == len(auxprune.load(exported)[1])


def _rename_input(src, dst, old: str, new: str) -> None:
    model = onnx.load(str(src))
    for value in model.graph.input:
        if value.name == old:
            value.name = new
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new
    onnx.save(model, str(dst))


def _refused(capsys, argv: list[str], *words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_bad_onnx_inputs_are_refused_with_one_line(exported, tmp_path, capsys, monkeypatch):
    foreign = tmp_path / "foreign.onnx"
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "foreign", [x], [y])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(foreign))
    renamed = tmp_path / "renamed.onnx"
    _rename_input(exported / "fp32.onnx", renamed, "token_type_ids", "segment_ids")
    out = tmp_path / "new" / "out.onnx"
    _refused(capsys, ["export", str(foreign), "--onnx", str(out), "--int8"], "not an auxprune ONNX export")
    _refused(capsys, ["export", str(renamed), "--onnx", str(out), "--int8"], "segment_ids", "do not match the tokenizer")
    _refused(capsys, ["export", str(exported / "int8" / "model.onnx"), "--onnx", str(out), "--int8"], "already quantized")
    _refused(capsys, ["export", str(exported / "fp32.onnx"), "--onnx", str(out)], "only a source for --int8")
    _refused(capsys, ["export", str(tmp_path / "missing.onnx"), "--onnx", str(out), "--int8"], "not found")
    _refused(capsys, ["eval", str(foreign)], "not an auxprune ONNX export")
    _refused(capsys, ["predict", str(renamed), "a cat"], "do not match the tokenizer")
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)  # an onnxruntime without its quantization tools
    _refused(capsys, ["export", str(exported), "--onnx", str(out), "--int8"], "--int8", "cannot quantize")
    assert not (tmp_path / "new").exists()  # nothing half-written, no folder left behind
