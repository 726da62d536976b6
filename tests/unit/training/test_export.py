import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from digitrec.errors import DigitrecError
from digitrec.training.export import export_onnx, export_run, load_run_model, save_weights
from digitrec.training.models import ModelConfig, build_model


@pytest.fixture
def run_folder(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig("fast", 8))
    # move batch-norm statistics away from their defaults so the check means something
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(32, 1, 28, 28))
    model.eval()
    save_weights(model, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"model": {"arch": "fast", "width": 8}}))
    return tmp_path, model


def test_onnx_matches_torch_and_honours_the_contract(run_folder):
    run, model = run_folder
    path, diff = export_run(run)
    assert path == run / "model.onnx" and diff < 1e-4
    graph = onnx.load(str(path)).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]  # dynamic batch axis
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32)
    logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert logits.shape == (5, 10)
    with torch.no_grad():
        assert np.abs(logits - model(torch.from_numpy(x)).numpy()).max() < 1e-4


def test_export_to_a_chosen_file(run_folder, tmp_path):
    run, _ = run_folder
    out = tmp_path / "elsewhere" / "m.onnx"
    path, _ = export_run(run, out)
    assert path == out and out.is_file()


def test_weights_round_trip_through_safetensors(run_folder):
    run, model = run_folder
    again = load_run_model(run)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_export_refuses_a_model_that_disagrees_with_torch(tmp_path, monkeypatch):
    import digitrec.training.export as export

    monkeypatch.setattr(export, "parity", lambda *a, **k: 1.0)
    with pytest.raises(DigitrecError, match="disagrees"):
        export_onnx(build_model(ModelConfig("fast", 8)).eval(), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists() and not list(tmp_path.iterdir())


def test_export_of_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(DigitrecError, match="not a run folder"):
        export_run(tmp_path)
