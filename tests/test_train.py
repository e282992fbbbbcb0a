"""Trainer, checkpoints and the train/eval/baseline commands, on tiny synthetic data."""

from __future__ import annotations

import json

import pytest
import torch

from edgeseg.checkpoint import CheckpointError, load_state, model_from_checkpoint, read_checkpoint
from edgeseg.cli.main import main
from edgeseg.data.synthetic import write_dataset
from edgeseg.models import create_model
from edgeseg.train import TrainConfig, median_frequency_weights, poly_lr, seg_loss, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return str(write_dataset(tmp_path_factory.mktemp("d") / "synth", 12, (64, 128), seed=2,
                             val_fraction=0.25, progress=False))


def cfg(data, out, **kw):
    base = {"model": "icnet", "data": data, "out": str(out), "size": (64, 128), "iters": 4,
            "batch": 2, "warmup": 2, "val_every": 100, "threads": 1}
    return TrainConfig(**{**base, **kw})


def test_poly_schedule_with_warmup():
    c = TrainConfig(model="icnet", data="x", out="y", lr=1.0, warmup=10, iters=110)
    assert poly_lr(c, 0, 110) == pytest.approx(0.1)
    assert poly_lr(c, 9, 110) == pytest.approx(1.0)
    assert poly_lr(c, 60, 110) == pytest.approx(0.5**0.9)
    assert poly_lr(c, 110, 110) == 0.0


def test_ohem_keeps_only_hard_pixels():
    logits = torch.tensor([[[[5.0, -5.0, 0.0, 0.0]], [[-5.0, 5.0, 0.0, 0.0]]]])  # 1x2x1x4
    target = torch.tensor([[[0, 0, 1, 255]]])
    c = TrainConfig(model="icnet", data="x", out="y", loss="ohem")
    ce = seg_loss(logits, target, TrainConfig(model="icnet", data="x", out="y"))
    hard = seg_loss(logits, target, c)
    # pixel 0 is easy (p = 1.0), pixel 1 wrong (loss 10), pixel 2 uncertain (log 2): OHEM
    # averages the two hard ones; CE averages all three valid pixels.
    assert hard.item() == pytest.approx((10.0 + 0.6931) / 2, rel=1e-3)
    assert ce.item() == pytest.approx((10.0 + 0.6931 + 4.5e-5) / 3, rel=1e-3)


def test_warmup_is_capped_for_short_schedules():
    c = TrainConfig(model="icnet", data="x", out="y", lr=1.0, warmup=50)
    assert poly_lr(c, 0, 20) == pytest.approx(0.5)  # warm-up of 2 steps, not 50
    assert poly_lr(c, 19, 20) < 0.1


def test_all_ignore_batch_gives_zero_loss():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    target = torch.full((1, 2, 2), 255)
    for loss in ("ce", "ohem"):
        v = seg_loss(logits, target, TrainConfig(model="icnet", data="x", out="y", loss=loss))
        assert v.item() == 0.0
        v.backward()


class _Masks:
    """A dataset stand-in: only the masks matter to the class weights."""

    def __init__(self, masks, n):
        from edgeseg.data.classes import ClassSet

        self.masks = masks
        self.classes = ClassSet("t", tuple(f"c{i}" for i in range(n)),
                                tuple((0, 0, 0) for _ in range(n)))

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, i):
        return None, self.masks[i]


def test_median_frequency_weights_by_hand():
    import numpy as np

    a = np.array([[0, 0, 0, 1]] * 4, np.uint8)  # 16 px: class 0 x12, class 1 x4
    b = np.array([[0, 2, 2, 255]] * 4, np.uint8)  # 16 px (4 ignored): class 0 x4, 2 x8
    w = median_frequency_weights(_Masks([a, b], 4))
    # freq = pixels / pixels of the images showing the class: c0 16/32 = 0.5, c1 4/16,
    # c2 8/16; median 0.5; class 3 never appears: weight 0.
    assert w.tolist() == pytest.approx([1.0, 2.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="all ignore"):
        median_frequency_weights(_Masks([np.full((2, 2), 255, np.uint8)], 2))


def test_class_weights_scale_the_loss():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 2.0]]]])  # 1x2x1x2: says class 0, class 1
    target = torch.tensor([[[0, 0]]])  # pixel 1 wrong
    c = TrainConfig(model="icnet", data="x", out="y")
    plain = seg_loss(logits, target, c)
    weighted = seg_loss(logits, target, c, weight=torch.tensor([1.0, 5.0]))
    # Both pixels are class 0: equal weights normalise away, the loss is unchanged.
    assert weighted.item() == pytest.approx(plain.item())
    target = torch.tensor([[[0, 1]]])
    w = seg_loss(logits, target, c, weight=torch.tensor([1.0, 3.0]))
    per = torch.nn.functional.cross_entropy(logits, target, reduction="none")[0, 0]
    assert w.item() == pytest.approx(((per[0] + 3 * per[1]) / 4).item())
    with pytest.raises(ValueError, match="class_weights"):
        TrainConfig(model="icnet", data="x", out="y", class_weights="inverse")


@pytest.mark.parametrize("kw, pattern", [({"optimizer": "rmsprop"}, "optimizer"),
                                         ({"batch": 1}, "batch >= 2"), ({"lr": 0}, "lr"),
                                         ({"loss": "dice"}, "loss")])
def test_bad_config(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        TrainConfig(model="icnet", data="x", out="y", **kw)


def test_training_learns(data, tmp_path):
    """60 steps on 9 tiny images: val mIoU well above the untrained model's."""
    from edgeseg.data.datasets import open_dataset
    from edgeseg.data.transforms import Preprocess
    from edgeseg.evaluate import TorchPredictor, evaluate

    torch.manual_seed(0)
    untrained = create_model("icnet", num_classes=8)
    before = evaluate(TorchPredictor(untrained, Preprocess((64, 128))), open_dataset(data, "val"))
    r = train(cfg(data, tmp_path / "a.pt", iters=60, lr=5e-3, val_every=30), progress=False,
              log=lambda s: None)
    hist = read_checkpoint(tmp_path / "a.pt")["history"]
    assert [h["iteration"] for h in hist] == [30, 60]
    assert r["metrics"]["miou"] > before.miou + 0.1


def test_checkpoint_metadata_and_reload(data, tmp_path):
    r = train(cfg(data, tmp_path / "m.pt"), progress=False, log=lambda s: None)
    ck = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ck["format"] == "edgeseg-checkpoint" and ck["iteration"] == 4
    assert ck["model"] == {"name": "icnet", "options": {}, "num_classes": 8}
    assert ck["classes"]["names"][-1] == "pole" and ck["preprocess"]["size"] == [64, 128]
    assert ck["train"]["batch"] == 2 and 0.0 <= ck["metrics"]["miou"] <= 1.0
    assert r["metrics"]["miou"] == ck["metrics"]["miou"]
    model, classes, pre = model_from_checkpoint(tmp_path / "m.pt")
    assert not model.training and classes.num_classes == 8 and pre.size == (64, 128)


class Interrupt(Exception):
    pass


def test_resume_matches_an_uninterrupted_run(data, tmp_path):
    """6 steps straight == 3 steps, a crash right after the checkpoint, then --resume."""
    straight = train(cfg(data, tmp_path / "s.pt", iters=6, val_every=3), progress=False,
                     log=lambda s: None)

    def crash_at_3(msg):
        if msg.startswith("iteration 3/"):
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg(data, tmp_path / "r.pt", iters=6, val_every=3), progress=False,
              log=crash_at_3)
    assert read_checkpoint(tmp_path / "r.pt")["iteration"] == 3
    logs = []
    resumed = train(cfg(data, tmp_path / "r.pt", iters=6, val_every=3),
                    resume=str(tmp_path / "r.pt"), progress=False, log=logs.append)
    assert logs[0].endswith("at iteration 3/6")
    a = read_checkpoint(tmp_path / "s.pt")
    b = read_checkpoint(tmp_path / "r.pt")
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    assert [h["iteration"] for h in b["history"]] == [3, 6]
    assert resumed["metrics"]["miou"] == pytest.approx(straight["metrics"]["miou"], abs=1e-3)


def test_resume_with_more_iterations_extends_the_schedule(data, tmp_path):
    train(cfg(data, tmp_path / "e.pt", iters=3), progress=False, log=lambda s: None)
    logs = []
    r = train(cfg(data, tmp_path / "e.pt", iters=5), resume=str(tmp_path / "e.pt"),
              progress=False, log=logs.append)
    assert logs[0].endswith("at iteration 3/5") and r["iterations"] == 5


def test_budget_is_kept(data, tmp_path):
    import time

    t = time.perf_counter()
    r = train(cfg(data, tmp_path / "b.pt", iters=10**6, minutes=0.08, val_every=10),
              progress=False, log=lambda s: None)
    assert r["iterations"] < 10**6
    assert time.perf_counter() - t < 0.08 * 60 * 1.5 + 5  # + model build and final val


def test_mismatched_checkpoint_lists_keys():
    a = create_model("bisenetv2", num_classes=3)
    b = create_model("bisenetv2", num_classes=5)
    with pytest.raises(CheckpointError, match=r"shape mismatch \[10\]: aux_heads.0.2.bias: "
                                              r"checkpoint \(3,\) vs model \(5,\)"):
        load_state(b, a.state_dict(), "ck.pt")
    c = create_model("icnet", num_classes=3)
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint \[\d+\].*not in the "
                                              r"model \[\d+\].*\+\d+ more"):
        load_state(c, a.state_dict(), "ck.pt")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        read_checkpoint(tmp_path / "x.pt")
    torch.save({"state_dict": {}}, tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="not an edgeseg checkpoint"):
        read_checkpoint(tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "z.pt")


def test_cli_synth_train_eval(tmp_path, capsys):
    d = tmp_path / "data"
    assert main(["data", "synth", "--out", str(d), "--num", "6", "--size", "64x128"]) == 0
    assert main(["data", "synth", "--out", str(d), "--num", "6", "--size", "64x128"]) == 2
    assert "--force" in capsys.readouterr().err
    ck = tmp_path / "c.pt"
    assert main(["train", "--model", "bisenetv2", "--data", str(d), "--out", str(ck),
                 "--size", "64x128", "--iters", "2", "--batch", "2", "--threads", "1",
                 "--no-progress"]) == 0
    out_json = tmp_path / "m.json"
    assert main(["eval", "--checkpoint", str(ck), "--data", str(d), "--json", str(out_json),
                 "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "pole" in table and "mIoU" in table
    m = json.loads(out_json.read_text())
    assert set(m["per_class_iou"]) >= {"road", "person", "pole"} and m["images"] == 1
    assert main(["train", "--model", "nosuch", "--data", str(d), "--out", str(ck)]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["train", "--model", "icnet", "--opt", "width=48", "--data", str(d),
                 "--out", str(tmp_path / "z.pt")]) == 2
    assert "width=48" in capsys.readouterr().err


def test_baseline_writes_json_and_markdown(data, tmp_path):
    from edgeseg import baseline

    res = baseline.run(["icnet"], data=data, bench_dir=tmp_path / "bench",
                       cache=tmp_path / "cache", size=(64, 128), minutes=0.05,
                       progress=False, log=lambda s: None)
    entry = json.loads((tmp_path / "bench/baselines.json").read_text())[0]
    assert entry == res[0]
    assert {"model", "size", "iters", "train_seconds", "miou", "per_class_iou"} <= set(entry)
    assert entry["size"] == "64x128" and 0 <= entry["miou"] <= 1
    assert set(entry["per_class_iou"]) == {"road", "sidewalk", "building", "vegetation", "sky",
                                           "car", "person", "pole"}
    md = (tmp_path / "bench/baselines.md").read_text()
    assert "| icnet | 64x128 |" in md and "edgeseg train --model icnet" in md
    if entry["planned_iters"] == entry["iters"]:
        assert f"--iters {entry['iters']} --batch" in md
    else:  # a loaded machine: the 3-second budget ended the schedule early, and md says so
        assert f"the budget ran out at iteration {entry['iters']} of" in md
    chance = json.loads((tmp_path / "bench/baselines_chance.json").read_text())
    assert 0 < chance["uniform_random"] < 0.3 and chance["position_prior"] > 0
    assert f"uniform random classes {chance['uniform_random']:.3f}" in md


def test_baseline_fixed_schedule_and_recipe_options(data, tmp_path):
    """--iters trains the same schedule whatever the machine's load; a recipe naming another
    model with options (DeepLabv3+ with Xception) trains that model under the recipe's name."""
    from edgeseg import baseline

    cmd = baseline.train_command("deeplabv3plus-xception", "D", "O", (64, 128), None,
                                 baseline.RECIPES["deeplabv3plus-xception"], 0, iters=7)
    assert cmd[:6] == ["edgeseg", "train", "--model", "deeplabv3plus", "--opt",
                       "backbone=xception"]
    assert "--iters" in cmd and "--minutes" not in cmd
    res = baseline.run(["icnet"], data=data, bench_dir=tmp_path / "bench",
                       cache=tmp_path / "cache", size=(64, 128), iters=3,
                       progress=False, log=lambda s: None)
    assert res[0]["iters"] == 3 and res[0]["budget_minutes"] is None
    md = (tmp_path / "bench/baselines.md").read_text()
    assert "--iters 3 --batch" in md and "a fixed schedule" in md


def test_chance_levels_on_a_known_layout(tmp_path):
    """Masks identical in every image: the position prior is perfect, uniform is not."""
    import numpy as np

    from edgeseg.baseline import chance_levels
    from edgeseg.data.io import write_image_png, write_label_png

    root = tmp_path / "d"
    root.mkdir()
    (root / "classes.json").write_text(json.dumps(
        {"names": ["a", "b"], "palette": [[0, 0, 0], [1, 1, 1]]}))
    lab = np.zeros((8, 8), np.uint8)
    lab[:, 4:] = 1
    for split, n in (("train", 3), ("val", 2)):
        d = root / "images" / split
        d.mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(n):
            write_image_png(d / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
            write_label_png(root / "masks" / split / f"{i}.png", lab)
    c = chance_levels(str(root))
    assert c["position_prior"] == 1.0 and c["majority_class"] == 0.25
    assert 0.2 < c["uniform_random"] < 0.5


def test_bf16_autocast_trains(data, tmp_path):
    from edgeseg.train import native_cpu_bf16

    c = cfg(data, tmp_path / "bf.pt", iters=2, amp="bf16")
    if not native_cpu_bf16():
        with pytest.raises(ValueError, match="no native bf16"):
            train(c, progress=False, log=lambda s: None)
        assert not (tmp_path / "bf.pt").exists()
        return
    r = train(c, progress=False, log=lambda s: None)
    assert r["iterations"] == 2 and 0.0 <= r["metrics"]["miou"] <= 1.0
    with pytest.raises(ValueError, match="amp must be"):
        TrainConfig(model="icnet", data="x", out="y", amp="fp8")


def test_boundary_target_and_loss():
    """Boundary pixels: a 3x3 neighbourhood holding another class; pixels next to an ignored
    one are not judged. The loss falls as the head's logits approach the target."""
    import torch

    from edgeseg.train.config import boundary_loss, boundary_target

    lab = torch.zeros(1, 4, 6, dtype=torch.long)
    lab[..., 3:] = 1
    lab[0, 0, 0] = 255
    edge, valid = boundary_target(lab)
    assert edge[0, 3].tolist() == [False, False, True, True, False, False]
    assert not valid[0, :2, :2].any() and valid[0, 3:].all()
    target = edge.float()[:, None] * 20 - 10  # logits that say "boundary" exactly there
    assert boundary_loss(target, lab) < boundary_loss(-target, lab)
    assert boundary_loss(torch.zeros(1, 1, 2, 3), lab) > 0  # a low-resolution head is resized
