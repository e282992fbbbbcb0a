"""The shared model tester: every registered model variant goes through the same checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edgeseg.models import SegmentationModel, TrainOutput, create_model, get_entry
from edgeseg.models.catalog import iter_variants
from edgeseg.models.complexity import measure
from edgeseg.train import TrainConfig, aux_loss

VARIANTS = list(iter_variants())
IDS = [f"{n}[{v}]" for n, v, _ in VARIANTS]
NUM_CLASSES = 5

# Strides of each model's auxiliary logits, from the papers: BiSeNet V1 supervises the
# context path at 1/8 and 1/16; BiSeNet V2 boosts the semantic stages 1/4..1/32; ICNet's
# cascade label guidance sits on the coarse inputs of its two fusions (1/16, 1/8).
# Fast-SCNN: the learning-to-downsample output (1/8) and the global features (1/32);
# DDRNet: the high-resolution branch (1/8); PIDNet: its P and D branches (1/8, the second a
# boundary channel); STDC-Seg: the context at 1/8 and 1/16 and the detail head at 1/8.
AUX_STRIDES = {"bisenetv1": (8, 16), "bisenetv2": (4, 8, 16, 32), "icnet": (16, 8),
               "segnet": (), "deeplabv3plus": (), "fastscnn": (8, 32), "ddrnet": (8,),
               "pidnet": (8, 8), "stdc": (8, 16, 8), "segformer": ()}


# Parameters whose training gradient is zero by construction, with the reason. BiSeNet V2's
# context embedding: BN(pooled) -> 1x1 conv -> BN with batch statistics; the first BN's bias
# shifts every sample of the batch by the same amount after the conv, which the second BN's
# mean subtraction removes exactly (it still matters at inference, with running stats).
ZERO_GRAD_BY_DESIGN = {"bisenetv2": {"semantic.ce.bn.bias"}}


def build(name: str, opts: dict, **extra) -> SegmentationModel:
    torch.manual_seed(0)
    return create_model(name, num_classes=NUM_CLASSES, **opts, **extra)


@pytest.fixture(params=VARIANTS, ids=IDS)
def variant(request):
    return request.param


def test_every_family_is_registered():
    assert {n for n, _, _ in VARIANTS} >= {"bisenetv1", "bisenetv2", "icnet", "segnet",
                                           "deeplabv3plus", "fastscnn", "ddrnet", "pidnet",
                                           "stdc", "segformer"}


def test_eval_output_at_full_resolution(variant, record_params):
    name, v, opts = variant
    model = build(name, opts).eval()
    record_params(f"{name}[{v}]", model)
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 512, 1024))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (1, NUM_CLASSES, 512, 1024)
    assert torch.isfinite(out).all()


def test_odd_size_is_padded_and_cropped(variant):
    name, _, opts = variant
    model = build(name, opts).eval()
    x = torch.randn(1, 3, 360, 480)
    with torch.inference_mode():
        out = model(x)
        # Padding is documented as zeros at the bottom/right: the same as padding by hand.
        manual = model(F.pad(x, (0, 32 - 480 % 32 if 480 % 32 else 0, 0, 384 - 360)))
    assert out.shape == (1, NUM_CLASSES, 360, 480)
    assert torch.equal(out, manual[..., :360, :480])


def test_odd_size_refused_when_asked(variant):
    name, _, opts = variant
    model = build(name, opts, pad="error").eval()
    with pytest.raises(ValueError, match=r"multiples of 32.*384x480"):
        model(torch.randn(1, 3, 360, 480))


def test_train_returns_main_and_aux_logits(variant):
    name, _, opts = variant
    model = build(name, opts).train()
    out = model(torch.randn(2, 3, 128, 128))
    assert isinstance(out, TrainOutput)
    assert out.main.shape == (2, NUM_CLASSES, 128, 128)
    strides = AUX_STRIDES[name]
    assert len(out.aux) == len(strides) == len(model.aux_weights) == len(model.aux_kinds)
    for aux, s, kind in zip(out.aux, strides, model.aux_kinds):
        channels = {"seg": NUM_CLASSES, "boundary": 1}[kind]
        assert aux.shape == (2, channels, 128 // s, 128 // s)


def test_train_at_odd_size_crops_aux_to_the_input(variant):
    """Aux logits at stride s cover ceil(H/s) x ceil(W/s): the input, not its padding."""
    name, _, opts = variant
    model = build(name, opts).train()
    out = model(torch.randn(2, 3, 100, 150))
    assert out.main.shape == (2, NUM_CLASSES, 100, 150)
    for aux, s in zip(out.aux, AUX_STRIDES[name]):
        assert aux.shape[-2:] == (-(-100 // s), -(-150 // s))


def test_deterministic_algorithms_mode(variant):
    """Every model runs under torch.use_deterministic_algorithms (no scatter-based ops)."""
    name, _, opts = variant
    model = build(name, opts).eval()
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with torch.inference_mode():
            out = model(torch.randn(1, 3, 64, 96))
    finally:
        torch.use_deterministic_algorithms(before)
    assert out.shape == (1, NUM_CLASSES, 64, 96)


def test_gradients_reach_every_parameter(variant):
    name, _, opts = variant
    # stochastic depth drops whole blocks for whole samples, by design: not here
    no_drop = {"drop_path": 0.0} if "drop_path" in get_entry(name).options() else {}
    model = build(name, opts, **no_drop).train()
    x = torch.randn(2, 3, 128, 128)
    target = torch.randint(0, NUM_CLASSES, (2, 128, 128))
    target[:, :8] = 255  # an ignore band, as real labels have
    out = model(x)
    loss = F.cross_entropy(out.main, target, ignore_index=255)
    cfg = TrainConfig(model=name, data="-", out="-", loss="ce")
    for w, kind, aux in zip(model.aux_weights, model.aux_kinds, out.aux):
        loss = loss + w * aux_loss(kind, aux, target, cfg)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient reached: {missing[:5]}"
    dead = {n for n, p in model.named_parameters() if not p.grad.abs().sum() > 0}
    assert dead == ZERO_GRAD_BY_DESIGN.get(name, set()), f"all-zero gradient: {sorted(dead)[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_eval_is_deterministic_and_batch_independent(variant):
    name, _, opts = variant
    model = build(name, opts).eval()
    x = torch.randn(2, 3, 96, 160)
    with torch.inference_mode():
        a, b = model(x), model(x)
        single = model(x[1:])
    assert torch.equal(a, b)
    torch.testing.assert_close(single, a[1:], rtol=1e-4, atol=1e-4)


def test_eval_forward_skips_auxiliary_heads(variant):
    """Auxiliary heads (modules named aux*) run in training only, and they are the only
    parameters the deploy forward leaves out."""
    name, _, opts = variant
    model = build(name, opts)
    aux = {n: m for n, m in model.named_modules()
           if any(part.startswith("aux") for part in n.split("."))
           and not isinstance(m, torch.nn.ModuleList)}
    assert bool(aux) == bool(AUX_STRIDES[name])
    called = []
    hooks = [m.register_forward_hook(lambda *_, n=n: called.append(n)) for n, m in aux.items()]
    with torch.inference_mode():
        model.eval()(torch.randn(1, 3, 64, 64))
    assert called == []
    model.train()(torch.randn(2, 3, 64, 64))
    assert set(called) == set(aux)
    for h in hooks:
        h.remove()
    c = measure(model, (64, 64))
    aux_params = sum({id(p): p.numel() for m in aux.values() for p in m.parameters()}.values())
    assert c.params_train - c.params == aux_params


@pytest.mark.parametrize("h, w", [(16, 32), (12, 12), (5, 7), (1, 3), (33, 65)])
@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_icnet_static_pooling_equals_adaptive(h, w, bins):
    from edgeseg.models.icnet import adaptive_avg_pool_static

    x = torch.randn(2, 3, h, w)
    torch.testing.assert_close(adaptive_avg_pool_static(x, bins), F.adaptive_avg_pool2d(x, bins),
                               rtol=1e-5, atol=1e-6)
