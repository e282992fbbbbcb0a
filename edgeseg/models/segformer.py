"""SegFormer (Xie et al., NeurIPS 2021, "SegFormer: Simple and Efficient Design for Semantic
Segmentation with Transformers"): SegFormer-B0, about 3.7 M parameters.

Mix Transformer encoder (MiT-B0), four stages at 1/4, 1/8, 1/16, 1/32 with 32, 64, 160 and
256 channels, two transformer blocks each:
* overlapping patch embedding: a strided conv (7x7 stride 4 for the first stage, 3x3 stride
  2 after) and a LayerNorm over the channels of each token;
* efficient self-attention: keys and values come from the tokens reduced by a strided conv
  of ratio 8, 4, 2, 1 (and a LayerNorm), so attention costs N x N/R^2; 1, 2, 5, 8 heads;
* Mix-FFN: a linear layer (4x expansion), a 3x3 depthwise conv over the token grid (the only
  position information: there are no positional encodings), GELU, a linear layer back;
* pre-norm residual blocks (LayerNorm, then attention / Mix-FFN), stochastic depth up to 0.1
  in training; a LayerNorm closes each stage.
All-MLP decoder: each stage's features projected to 256 channels, upsampled to 1/4,
concatenated, fused by a 1x1 conv-BN-ReLU, and classified by a 1x1 conv.

The attention is written as MatMul/Softmax (no fused attention op), and LayerNorm exports as
ONNX's LayerNormalization: the ops that TensorRT, OpenVINO and ONNX Runtime all read, and the
ones that overflow in FP16 unless kept in FP32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct, resize
from edgeseg.models.registry import register_model

# MiT-B0: channels, heads, reduction ratios, blocks; patch embedding kernel and stride
B0 = dict(dims=(32, 64, 160, 256), heads=(1, 2, 5, 8), ratios=(8, 4, 2, 1), depths=(2, 2, 2, 2))
PATCHES = ((7, 4), (3, 2), (3, 2), (3, 2))


def tokens(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x HW x C."""
    return x.flatten(2).transpose(1, 2)


def grid(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """N x HW x C -> N x C x H x W."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


class PatchEmbed(nn.Module):
    def __init__(self, in_ch: int, dim: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel, stride, kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(tokens(x)), h, w


class EfficientAttention(nn.Module):
    def __init__(self, dim: int, heads: int, ratio: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ratio = ratio
        if ratio > 1:
            self.reduce = nn.Conv2d(dim, dim, ratio, ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, length, c = x.shape
        d = c // self.heads
        q = self.q(x).reshape(n, length, self.heads, d).transpose(1, 2)
        src = self.norm(tokens(self.reduce(grid(x, h, w)))) if self.ratio > 1 else x
        kv = self.kv(src).reshape(n, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q @ kv[0].transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ kv[1]).transpose(1, 2).reshape(n, length, c))


class MixFFN(nn.Module):
    def __init__(self, dim: int, expand: int = 4) -> None:
        super().__init__()
        hidden = dim * expand
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = tokens(self.dwconv(grid(self.fc1(x), h, w)))
        return self.fc2(F.gelu(x))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ratio: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = EfficientAttention(dim, heads, ratio)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.ffn = MixFFN(dim)
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self._drop(self.attn(self.norm1(x), h, w))
        return x + self._drop(self.ffn(self.norm2(x), h, w))

    def _drop(self, y: torch.Tensor) -> torch.Tensor:
        """Stochastic depth: in training, drop the branch for whole samples."""
        if not self.training or self.drop_path == 0:
            return y
        keep = 1 - self.drop_path
        mask = torch.rand(y.shape[0], 1, 1, device=y.device, dtype=y.dtype) < keep
        return y * mask / keep


class MixTransformer(nn.Module):
    """Outputs the four stages' feature maps (N x C_i x H/s_i x W/s_i)."""

    def __init__(self, in_ch: int, dims, heads, ratios, depths, drop_path: float = 0.1) -> None:
        super().__init__()
        n = sum(depths)  # the rate grows linearly from 0 to drop_path over the blocks
        rates = [drop_path * i / max(1, n - 1) for i in range(n)]
        self.embeds, self.stages, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        prev, k = in_ch, 0
        for (kernel, stride), dim, head, ratio, depth in zip(PATCHES, dims, heads, ratios,
                                                              depths):
            self.embeds.append(PatchEmbed(prev, dim, kernel, stride))
            self.stages.append(nn.ModuleList(Block(dim, head, ratio, rates[k + i])
                                              for i in range(depth)))
            self.norms.append(nn.LayerNorm(dim, eps=1e-6))
            prev, k = dim, k + depth

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for embed, blocks, norm in zip(self.embeds, self.stages, self.norms):
            t, h, w = embed(x)
            for block in blocks:
                t = block(t, h, w)
            x = grid(norm(t), h, w)
            feats.append(x)
        return feats


class SegFormer(SegmentationModel):
    def __init__(self, *, num_classes: int, in_channels: int, pad: str,
                 decoder_dim: int = 256, drop_path: float = 0.1) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad)
        self.encoder = MixTransformer(in_channels, **B0, drop_path=drop_path)
        # the decoder's per-stage linear layers, as 1x1 convs over the feature maps
        self.project = nn.ModuleList(nn.Conv2d(c, decoder_dim, 1) for c in B0["dims"])
        self.fuse = ConvBNAct(4 * decoder_dim, decoder_dim, 1)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Conv2d(decoder_dim, num_classes, 1)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = self.encoder(x)
        size = feats[0].shape[-2:]
        ups = [resize(p(f), size) for p, f in zip(self.project, feats)]
        main = self.classifier(self.dropout(self.fuse(torch.cat(ups[::-1], 1))))
        return main, []


@register_model("segformer", summary="SegFormer-B0: Mix Transformer encoder, all-MLP decoder",
                variants={"b0": {}})
def segformer(*, num_classes: int, in_channels: int = 3, pad: str = "pad",
              drop_path: float = 0.1) -> SegFormer:
    """SegFormer-B0. `drop_path`: the stochastic depth rate of the last block (training)."""
    return SegFormer(num_classes=num_classes, in_channels=in_channels, pad=pad,
                     drop_path=float(drop_path))
