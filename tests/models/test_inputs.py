"""Bad input gets an error that names the problem and the fix."""

from __future__ import annotations

import pytest
import torch

from edgeseg.models import create_model


@pytest.fixture(scope="module")
def model():
    return create_model("bisenetv2", num_classes=4).eval()


@pytest.mark.parametrize("x, exc, pattern", [
    (torch.zeros(3, 64, 64), ValueError, r"4-D NCHW.*3-D shape \(3, 64, 64\).*unsqueeze\(0\)"),
    (torch.zeros(1, 1, 3, 64, 64), ValueError, r"4-D NCHW.*5-D"),
    (torch.zeros(1, 1, 64, 64), ValueError, r"3 input channels.*got 1"),
    (torch.zeros(1, 4, 64, 64), ValueError, r"3 input channels.*got 4"),
    (torch.zeros(1, 64, 64, 3), ValueError, r"looks like NHWC.*permute\(0, 3, 1, 2\)"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, r"floating-point.*uint8.*float"),
    (torch.zeros(1, 3, 16, 64), ValueError, r"at least 32x32, got 16x64"),
])
def test_bad_tensors(model, x, exc, pattern):
    with pytest.raises(exc, match=pattern):
        model(x)


def test_not_a_tensor(model):
    import numpy as np

    with pytest.raises(TypeError, match="expects a torch.Tensor, got ndarray"):
        model(np.zeros((1, 3, 64, 64), dtype=np.float32))


@pytest.mark.parametrize("name", ["bisenetv1", "bisenetv2", "deeplabv3plus"])
def test_training_on_batch_of_one_is_explained(name):
    m = create_model(name, num_classes=4).train()
    with pytest.raises(ValueError, match=r"cannot train on a batch of 1 at 64x64.*batch of 2"):
        m(torch.zeros(1, 3, 64, 64))


def test_icnet_batch_of_one_needs_a_larger_input():
    m = create_model("icnet", num_classes=4).train()
    with pytest.raises(ValueError, match=r"batch of 1 at 32x32"):
        m(torch.zeros(1, 3, 32, 32))
    assert m(torch.zeros(1, 3, 64, 32)).main.shape == (1, 4, 64, 32)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_dtype_mismatch_is_explained(model, dtype):
    with pytest.raises(TypeError, match=rf"float32 weights but the input is {dtype}"):
        model(torch.zeros(1, 3, 64, 64, dtype=dtype))


def test_bool_in_channels_refused():
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        create_model("segnet", num_classes=2, in_channels=True)


def test_other_input_channels():
    m = create_model("segnet", num_classes=2, in_channels=1).eval()
    with torch.inference_mode():
        assert m(torch.zeros(1, 1, 64, 64)).shape == (1, 2, 64, 64)
    with pytest.raises(ValueError, match="1 input channels"):
        m(torch.zeros(1, 3, 64, 64))
