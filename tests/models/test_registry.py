from __future__ import annotations

import pytest
import torch

import edgeseg
from edgeseg.models import create_model, list_models, register_model
from edgeseg.models.registry import _REGISTRY


def test_top_level_api_matches_registry():
    assert edgeseg.list_models() == list_models() == sorted(list_models())
    m = edgeseg.create_model("bisenetv2", num_classes=3)
    assert m.num_classes == 3


def test_unknown_model_lists_known_ones():
    with pytest.raises(KeyError, match=r"unknown model 'bisenet'.*bisenetv1.*segnet"):
        create_model("bisenet", num_classes=19)


def test_unknown_option_names_it_and_lists_options():
    with pytest.raises(TypeError, match=r"unknown option\(s\) widht.*model 'icnet'.*width=32"):
        create_model("icnet", num_classes=19, widht=64)


@pytest.mark.parametrize("name, opts, pattern", [
    ("deeplabv3plus", {"backbone": "resnet101"}, r"backbone='resnet101'.*'mobilenetv2'"),
    ("deeplabv3plus", {"output_stride": 32}, r"output_stride=32.*8, 16"),
    ("bisenetv1", {"backbone": "resnet50"}, r"backbone='resnet50'.*'xception39'"),
    ("icnet", {"width": 48}, r"width=48"),
    ("segnet", {"pad": "reflect"}, r"pad must be one of"),
])
def test_bad_option_values_are_named(name, opts, pattern):
    with pytest.raises(ValueError, match=pattern):
        create_model(name, num_classes=19, **opts)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "19"])
def test_num_classes_must_be_positive_int(bad):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        create_model("segnet", num_classes=bad)


def test_num_classes_is_required_keyword():
    with pytest.raises(TypeError):
        create_model("segnet")  # type: ignore[call-arg]


def test_duplicate_name_is_an_error():
    with pytest.raises(ValueError, match="'segnet' is already registered"):
        @register_model("segnet", summary="again")
        def again(*, num_classes: int):  # pragma: no cover - never built
            raise AssertionError


def test_builders_must_be_keyword_only():
    with pytest.raises(TypeError, match="keyword-only"):
        @register_model("positional-test", summary="x")
        def positional(num_classes: int):  # pragma: no cover
            raise AssertionError
    assert "positional-test" not in _REGISTRY


def test_registration_and_creation_of_a_new_model():
    @register_model("tiny-test", summary="a test model", variants={"default": {}})
    def tiny(*, num_classes: int, width: int = 4):
        return torch.nn.Conv2d(3, num_classes, 1)

    try:
        assert "tiny-test" in list_models()
        assert create_model("tiny-test", num_classes=2, width=8).out_channels == 2
    finally:
        del _REGISTRY["tiny-test"]
