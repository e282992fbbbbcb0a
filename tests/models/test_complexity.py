"""The complexity counter is right on hand-countable layers, and the zoo is within 25% of the
published figures it claims to reproduce."""

from __future__ import annotations

import pytest
import torch

from edgeseg.models import create_model
from edgeseg.models.catalog import describe
from edgeseg.models.complexity import measure
from edgeseg.models.references import REFERENCES


class TwoConvs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.b = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)  # depthwise
        self.unused = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.b(self.a(x))


def test_counter_matches_hand_count():
    c = measure(TwoConvs(), (16, 32))
    assert c.macs == 16 * 32 * 8 * 3 * 9 + 8 * 16 * 8 * 9
    assert c.params == 8 * 3 * 9 + 8 * 9 + 8
    assert c.params_train == c.params + 4 * 4 + 4
    assert c.gflops == pytest.approx(2 * c.gmacs)


def test_meta_device_count_equals_cpu_count():
    cpu = create_model("bisenetv2", num_classes=19)
    with torch.device("meta"):
        meta = create_model("bisenetv2", num_classes=19)
    assert measure(cpu, (256, 512)) == measure(meta, (256, 512))


ROWS = describe((512, 1024), 19)
CHECKS = [
    (f"{r['name']}[{r['variant']}]:{kind}", r["reference"][kind])
    for r in ROWS for kind in ("params_m", "gmacs")
    if r["reference"][kind] and r["reference"][kind]["comparable"]
]


def test_every_family_has_a_checked_reference():
    checked = {label.split("[")[0] for label, _ in CHECKS}
    assert checked == {"bisenetv1", "bisenetv2", "icnet", "segnet", "deeplabv3plus",
                       "fastscnn", "ddrnet", "pidnet", "segformer"}
    assert len(REFERENCES) == len(ROWS)


@pytest.mark.parametrize("label, ref", CHECKS, ids=[c[0] for c in CHECKS])
def test_within_25_percent_of_published(label, ref):
    assert abs(ref["delta"]) <= 0.25, f"{label}: {ref}"


def test_issue_figures():
    by = {(r["name"], r["variant"]): r for r in ROWS}
    assert by[("bisenetv1", "resnet18")]["params_m"] == pytest.approx(13.3, rel=0.05)
    assert by[("bisenetv2", "default")]["params_m"] == pytest.approx(3.4, rel=0.05)
    assert by[("segnet", "vgg16bn")]["params_m"] == pytest.approx(29.4, rel=0.05)
