"""Published parameter and MAC counts that `edgeseg models` compares ours against.

Data only. `comparable=False` marks a figure that measures a different network than ours on
purpose (the note says how); those are shown but not checked. MACs are multiply-accumulates:
sources that print "FLOPs" for MACs (most segmentation papers and fvcore/thop/mmcv) are
recorded as MACs, and ENet's table, which counts 2 x MACs, is halved.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    value: float  # millions of parameters, or GMACs
    source: str
    comparable: bool = True
    note: str = ""
    size: tuple[int, int] | None = None  # input HxW of a MAC count
    num_classes: int = 19
    # MACs grow with the pixel count (convolutions): compared rescaled to any size; False
    # (global attention, quadratic in the tokens): compared at the figure's own size
    linear: bool = True


@dataclass(frozen=True)
class Reference:
    params_m: Figure | None = None
    gmacs: Figure | None = None


_BISENET_PAPER = "BiSeNet, ECCV 2018, Table 6"
_ZH320 = "zh320/realtime-semantic-segmentation-pytorch README (own count)"

REFERENCES: dict[tuple[str, str], Reference] = {
    ("bisenetv1", "resnet18"): Reference(
        params_m=Figure(13.3, _ZH320 + "; CoinCheung/BiSeNet's layout",
                        note="the paper's 49.0 M for Res18 is not reproducible from its text"),
        gmacs=Figure(10.8, _BISENET_PAPER, size=(360, 640)),
    ),
    ("bisenetv1", "xception39"): Reference(
        params_m=Figure(5.8, _BISENET_PAPER, comparable=False,
                        note="TorchSeg's public Xception39 layer config, which ours "
                        "follows, counts 1.5 M"),
        gmacs=Figure(2.9, _BISENET_PAPER, size=(360, 640)),
    ),
    ("bisenetv2", "default"): Reference(
        params_m=Figure(3.4, "CoinCheung/BiSeNet reimplementation (the paper gives none)"),
        gmacs=Figure(21.15, "BiSeNet V2, IJCV 2021 (arXiv 2004.02147)", size=(512, 1024)),
    ),
    ("icnet", "resnet50-half"): Reference(
        params_m=Figure(26.5, "ICNet as cited in later papers' tables (e.g. BiSeNet V2)",
                        comparable=False,
                        note="the released half-width ICNet (hszhao/ICNet prototxt) counts "
                        "6.7 M, as ours; 26.5 M matches no released ICNet"),
        gmacs=Figure(28.3, "ICNet, ECCV 2018", size=(1024, 2048)),
    ),
    ("segnet", "vgg16bn"): Reference(
        params_m=Figure(29.46, "ENet paper (arXiv 1606.02147), Table 3"),
        gmacs=Figure(143.0, "ENet paper, Table 3: 286.03 GFLOPs = 2 x MACs", size=(360, 640)),
    ),
    ("deeplabv3plus", "mobilenetv2-os16"): Reference(
        gmacs=Figure(17.0, "VainF/DeepLabV3Plus-Pytorch README (thop MACs)", comparable=False,
                     note="standard 3x3 convs in ASPP and decoder; ours are separable",
                     size=(513, 513)),
    ),
    ("deeplabv3plus", "resnet50-os16"): Reference(
        params_m=Figure(26.68, "segmentation_models_pytorch DeepLabV3Plus (separable ASPP)",
                        num_classes=21),
        gmacs=Figure(62.7, "VainF/DeepLabV3Plus-Pytorch README (thop MACs)", comparable=False,
                     note="standard 3x3 convs in ASPP and decoder; ours are separable",
                     size=(513, 513)),
    ),
    ("deeplabv3plus", "xception65-os16"): Reference(
        gmacs=Figure(54.17, "DeepLabv3+ paper Table 5 / tensorflow/models deeplab model zoo",
                     size=(513, 513)),
    ),
    ("fastscnn", "default"): Reference(
        params_m=Figure(1.11, "Fast-SCNN, BMVC 2019, Table 4"),
    ),
    ("ddrnet", "23-slim"): Reference(
        params_m=Figure(5.7, "DDRNet paper (arXiv 2101.06085), Cityscapes table"),
        gmacs=Figure(36.3, "DDRNet paper (arXiv 2101.06085), Cityscapes table",
                     size=(1024, 2048)),
    ),
    ("pidnet", "s"): Reference(
        params_m=Figure(7.6, "PIDNet, CVPR 2023, Cityscapes table"),
        gmacs=Figure(47.6, "PIDNet, CVPR 2023, Cityscapes table", size=(1024, 2048)),
    ),
    ("stdc", "stdc1"): Reference(
        gmacs=Figure(0.813, "STDCNet813M: STDC1 on ImageNet at 224x224 (the released "
                     "weights' name)", comparable=False, size=(224, 224),
                     note="the ImageNet classifier: our STDC1-Seg adds the BiSeNet head and "
                     "has no classification layers"),
    ),
    ("segformer", "b0"): Reference(
        params_m=Figure(3.8, "SegFormer, NeurIPS 2021, Table 1 (ADE20K head)",
                        num_classes=150),
        gmacs=Figure(125.5, "SegFormer, NeurIPS 2021, Table 1 (Cityscapes)",
                     size=(1024, 2048), linear=False),
    ),
}


def scaled_gmacs(fig: Figure, size: tuple[int, int]) -> float:
    """A published MAC count rescaled by pixel count to `size`: a fully convolutional
    network's MACs grow linearly with the number of pixels."""
    assert fig.size is not None
    return fig.value * (size[0] * size[1]) / (fig.size[0] * fig.size[1])
