import numpy as np
import pytest
import torch

from digitrec.training.augment import AugmentConfig, random_affine
from digitrec.training.models import FastCNN, ModelConfig, ReferenceCNN, build_model, count_parameters
from digitrec.training.report import model_summary


def test_reference_cnn_has_exactly_the_reference_parameter_counts():
    assert count_parameters(ReferenceCNN()) == (211_690, 213_354)


def test_reference_cnn_layers_are_in_the_reference_order():
    kinds = [type(m).__name__ for m in ReferenceCNN().modules() if not list(m.children())]
    assert kinds == [
        "Normalize", "Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d", "Dropout",
        "Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d", "Dropout",
        "Conv2d", "ReLU", "BatchNorm2d", "AdaptiveAvgPool2d", "Flatten",
        "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear",
    ]


@pytest.mark.parametrize("cfg", [ModelConfig("reference"), ModelConfig("fast", 8), ModelConfig("fast", 24),
                                 ModelConfig("vit", 32)])
def test_models_map_a_batch_to_ten_logits(cfg):
    model = build_model(cfg).eval()
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model(ModelConfig("resnet9000"))


def test_model_summary_prints_output_shapes_and_totals():
    text = model_summary(ReferenceCNN())
    assert "(None, 32, 28, 28)" in text and "(None, 128, 7, 7)" in text and "(None, 10)" in text
    assert "Trainable params: 211,690" in text and "213,354" in text


def conv_macs(model) -> int:
    """Multiply-accumulates of the convolutions for one image: what dominates CPU time here."""
    macs: list[int] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: macs.append(out.numel() * mod.in_channels * 9))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    model.eval()(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    return sum(macs)


def test_fast_cnn_is_cheaper_per_image_than_the_reference_cnn():
    assert conv_macs(FastCNN(24)) < 0.7 * conv_macs(ReferenceCNN())


def test_augmentation_keeps_shapes_range_and_batch_order():
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1.0
    y = random_affine(x, AugmentConfig(), generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0 + 1e-6
    assert not torch.allclose(y, x)  # something moved
    # each image still has about the ink it had (zoom changes it by at most ~20%)
    ratio = y.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert torch.all((ratio > 0.7) & (ratio < 1.35))


def test_augmentation_with_zero_ranges_is_the_identity():
    x = torch.rand(4, 1, 28, 28)
    off = AugmentConfig(rotation_deg=0, shift=0, zoom=0, shear_deg=0)
    assert torch.equal(random_affine(x, off), x)


def test_augmentation_shift_moves_the_centre_of_mass_within_bounds():
    x = torch.zeros(256, 1, 28, 28)
    x[:, :, 12:16, 12:16] = 1.0
    y = random_affine(x, AugmentConfig(rotation_deg=0, shift=0.1, zoom=0, shear_deg=0),
                      generator=torch.Generator().manual_seed(1))
    cols = torch.arange(28.0)
    cx = (y.sum((1, 2)) * cols).sum(1) / y.sum((1, 2, 3))
    assert float((cx - 13.5).abs().max()) <= 0.1 * 28 + 0.5
    assert float(cx.std()) > 1.0  # shifts really vary per image


def test_augmentation_is_reproducible_with_a_generator():
    x = torch.rand(8, 1, 28, 28)
    a = random_affine(x, AugmentConfig(), generator=torch.Generator().manual_seed(5))
    b = random_affine(x, AugmentConfig(), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert np.isfinite(a.numpy()).all()


def test_vit_exports_to_onnx_and_matches_torch(tmp_path):
    from digitrec.training.export import export_onnx

    model = build_model(ModelConfig("vit", 32)).eval()
    assert export_onnx(model, tmp_path / "vit.onnx") < 1e-4


def test_old_name_seed_reads_as_reference_in_run_folders_recipes_and_presets():
    from digitrec.training.recipes import PRESETS, resolve_config, same_recipe

    assert ModelConfig("seed").arch == "reference"  # config.json of runs made before the rename
    assert isinstance(build_model(ModelConfig("seed")), ReferenceCNN)
    with pytest.warns(FutureWarning, match="'seed' is now called 'reference'"):
        assert resolve_config("seed") == PRESETS["reference"]
    old = {**PRESETS["reference"].to_dict(), "arch": "seed"}
    assert same_recipe(old, PRESETS["reference"])


def test_a_cropped_fast_cnn_sees_only_the_centre_and_exports_with_its_crop(tmp_path):
    from digitrec.training.export import export_onnx

    model = build_model(ModelConfig("fast", 8, crop=22)).eval()
    x = torch.rand(4, 1, 28, 28)
    outside = x.clone()
    outside[..., :3, :], outside[..., -3:, :], outside[..., :, :3], outside[..., :, -3:] = 0, 0, 0, 0
    assert torch.equal(model(x), model(x[..., 3:25, 3:25]))  # a 22x22 input passes through uncropped
    assert not torch.equal(model(x), model(torch.rand(4, 1, 28, 28)))
    assert torch.allclose(model(x), model(outside))  # the border is never looked at
    assert conv_macs(model) < 0.7 * conv_macs(FastCNN(8))
    assert export_onnx(model, tmp_path / "crop.onnx") < 1e-4  # the graph takes 28x28 and crops it itself


def test_a_crop_adds_no_weights_so_older_run_folders_still_load():
    assert FastCNN(8).state_dict().keys() == FastCNN(8, crop=24).state_dict().keys()
    assert ModelConfig(**{"arch": "fast", "width": 8}).crop == 28  # config.json written before crops
