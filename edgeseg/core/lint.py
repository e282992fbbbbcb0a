"""Deployment-readiness lint: a static check of an ONNX graph against what a target engine
accepts, so users learn before they reach the device that a build would fail.

Each finding names the node, the problem and a fix. Severity `error`: the engine's parser
or builder rejects it; `warning`: it builds but is slow, lossy or fragile; `info`: worth
knowing. Facts come from the engines' own support tables (onnx-tensorrt's operators.md for
TensorRT 10.15, TensorRT's 10.x -> 11.x migration guide, OpenVINO's ONNX frontend).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from edgeseg.core.errors import MissingInput, UsageError

TARGETS = ("tensorrt-10", "tensorrt-11", "openvino")

# ONNX ops onnx-tensorrt (TensorRT 10.15) marks unsupported; TensorRT 11's table is not
# published as of writing and is assumed the same (11.2 adds DFT).
TRT_UNSUPPORTED = frozenset("""
AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Col2Im CenterCropPad
Compress ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear ImageDecoder
MatMulInteger MaxRoiPool MaxUnpool MelWeightMatrix Multinomial NegativeLogLikelihoodLoss
Optional OptionalGetElement OptionalHasElement QLinearConv QLinearMatMul RegexFullMatch
SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength
SequenceMap SoftmaxCrossEntropyLoss SplitToSequence STFT StringConcat StringNormalizer
StringSplit TfIdfVectorizer Unique""".split())
TRT_OPSET = {"tensorrt-10": (9, 24), "tensorrt-11": (9, 25)}
TRT_RESIZE_MODES = {"nearest", "linear"}
TRT_RESIZE_TRANSFORMS = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                         "asymmetric", "align_corners"}
# OpenVINO's ONNX frontend: MaxUnpool only in recent sources; treat it as unsupported.
OV_UNSUPPORTED = frozenset({"MaxUnpool"})
OV_RESIZE_TRANSFORMS = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                        "tf_half_pixel_for_nn"}


@dataclass(frozen=True)
class Finding:
    severity: str
    node: str
    op: str
    message: str
    fix: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity.upper()} [{self.op} {self.node}] {self.message} Fix: {self.fix}"


def load_onnx(path: str | Path):
    """An ONNX model from a file or an artifact directory; a clear error otherwise."""
    import onnx

    path = Path(path)
    if path.is_dir():
        path = path / "model.onnx"
    if not path.is_file():
        raise MissingInput(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf's DecodeError and friends
        raise UsageError(f"{path}: not an ONNX model ({type(e).__name__}: {e})") from None
    if not model.graph.node:
        raise UsageError(f"{path}: not an ONNX model (no graph nodes)")
    return model


def _attr(node, name, default=None):
    import onnx

    for a in node.attribute:
        if a.name == name:
            v = onnx.helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def lint(model, target: str) -> list[Finding]:
    """All findings for `model` (an onnx.ModelProto) on `target`."""
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    consts = _constants(model.graph)
    out = _model_findings(model, target)
    for node in model.graph.node:
        out += _node_findings(node, target, consts)
    out += _tensor_findings(model, target)
    return out


def _constants(graph) -> dict:
    """Tensor name -> TensorProto of the initializers and Constant nodes."""
    consts = {t.name: t for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = _attr(n, "value")
    return consts


def _finding(sev: str, node, msg: str, fix: str) -> Finding:
    return Finding(sev, node.name or "(unnamed)", node.op_type, msg, fix)


def _model_findings(model, target: str) -> list[Finding]:
    """The whole model: the ONNX checker, and the opset against TensorRT's range."""
    import onnx

    out: list[Finding] = []
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        out.append(Finding("error", "(model)", "checker", f"the ONNX checker rejects the "
                           f"graph: {first}", "re-export; parsers such as TensorRT's need "
                           "a valid, topologically sorted graph"))

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if target.startswith("tensorrt") and opset is not None:
        lo, hi = TRT_OPSET[target]
        if not lo <= opset <= hi:
            out.append(Finding("error", "(model)", "opset", f"opset {opset} is outside "
                               f"{target}'s range {lo}-{hi}", f"re-export with an opset in "
                               f"{lo}..{hi} (edgeseg export --opset 17)"))
    return out


def _node_findings(node, target: str, consts: dict) -> list[Finding]:
    trt = target.startswith("tensorrt")
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return [_finding("error" if trt else "warning", node,
                         f"custom-domain op {node.domain}::{op}",
                         "provide a plugin, or export without custom ops")]
    out = _support_findings(node, target)
    if op == "Resize":
        out += _resize_findings(node, trt, consts)
    if trt:
        out += _trt_node_findings(node, consts)
    return out


def _support_findings(node, target: str) -> list[Finding]:
    """Ops and pooling variants the engine does not take."""
    trt = target.startswith("tensorrt")
    op = node.op_type
    out = []
    if op in (TRT_UNSUPPORTED if trt else OV_UNSUPPORTED):
        fix = ("use edgeseg's SegNet (index-free unpooling) or rebuild the mask from the "
               "pooling input" if op == "MaxUnpool" else "replace this op before export")
        out.append(_finding("error", node, f"{op} is not supported by {target}", fix))
    if op == "MaxPool" and len([o for o in node.output if o]) > 1 and trt:
        out.append(_finding("error", node, "MaxPool's Indices output is unsupported by TensorRT",
                            "drop the indices: unpool by comparing the input with the "
                            "upsampled window maxima (edgeseg.models.segnet.unpool2x)"))
    if op in ("MaxPool", "AveragePool") and any(d != 1 for d in _attr(node, "dilations", [])):
        out.append(_finding("error" if trt else "warning", node, "pooling with dilations != 1",
                            "use undilated pooling"))
    return out


def _resize_findings(node, trt: bool, consts: dict) -> list[Finding]:
    out = []
    mode = _attr(node, "mode", "nearest")
    ctm = _attr(node, "coordinate_transformation_mode", "half_pixel")
    if trt and mode not in TRT_RESIZE_MODES:
        out.append(_finding("error", node, f"Resize mode {mode!r} is unsupported "
                            "(nearest/linear only)", "use bilinear or nearest interpolation"))
    transforms = TRT_RESIZE_TRANSFORMS if trt else OV_RESIZE_TRANSFORMS
    if ctm not in transforms:
        out.append(_finding("error", node, f"Resize coordinate_transformation_mode {ctm!r} is "
                            "unsupported", "use align_corners=False (half_pixel) in "
                            "F.interpolate"))
    if _attr(node, "antialias", 0):
        out.append(_finding("error" if trt else "warning", node,
                            "antialiased Resize is unsupported", "resize without antialias"))
    sizes = [i for i in node.input[2:4] if i]  # scales, sizes (not roi)
    if sizes and not all(s in consts for s in sizes):
        out.append(_finding("warning", node, "Resize scales/sizes are computed at run time",
                            "export with a static input size so the sizes become constants"))
    return out


def _trt_node_findings(node, consts: dict) -> list[Finding]:
    """What TensorRT alone refuses or runs slowly: axes, TopK, quantization, ScatterND,
    ArgMax."""
    from onnx import numpy_helper

    op = node.op_type
    out = []
    if op.startswith("Reduce") and len(node.input) > 1 and node.input[1] \
            and node.input[1] not in consts:
        out.append(_finding("error", node, f"{op} axes are not an initializer",
                            "use constant axes"))
    if op == "TopK":
        k = consts.get(node.input[1]) if len(node.input) > 1 else None
        if k is not None and int(numpy_helper.to_array(k).max()) >= 3840:
            out.append(_finding("error", node, "TopK K must be < 3840 in TensorRT", "reduce K"))
    if op in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
        out += _zero_point_findings(node, consts.get(node.input[2]))
    if op == "ScatterND" and _attr(node, "reduction", "none") != "none":
        out.append(_finding("error", node, "ScatterND with a reduction is unsupported",
                            "avoid the reduction"))
    if op == "ArgMax":
        out.append(_finding("warning", node, "TensorRT implements ArgMax with TopK, slow on "
                            "large maps", "export with --output labels_lowres (argmax at low "
                            "resolution), or logits and argmax on the host"))
    return out


def _zero_point_findings(node, zp) -> list[Finding]:
    """A Q/DQ node's zero point (`zp`, a TensorProto or None) against TensorRT's INT8."""
    import onnx
    from onnx import numpy_helper

    out = []
    if zp is not None and numpy_helper.to_array(zp).any():
        out.append(_finding("error", node, "non-zero zero point: TensorRT supports symmetric "
                            "quantization only", "quantize with --target tensorrt "
                            "(symmetric INT8)"))
    if zp is not None and zp.data_type == onnx.TensorProto.INT32:
        out.append(_finding("warning", node, "INT32 dequantization (a quantized bias): "
                            "TensorRT's Q/DQ layers take INT8, FP8 or INT4", "keep the bias in "
                            "float (edgeseg quantize --target tensorrt does)"))
    if zp is not None and zp.data_type == onnx.TensorProto.UINT8:
        out.append(_finding("error", node, "UINT8 quantization: TensorRT quantizes to INT8",
                            "quantize with signed INT8 (--target tensorrt)"))
    return out


def _tensor_findings(model, target: str) -> list[Finding]:
    """Types and shapes: DOUBLE, UINT8 inside the graph, dynamic dimensions."""
    import onnx

    out = []
    trt = target.startswith("tensorrt")
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # shape inference is best effort; a lint must still report the rest
        inferred = model.graph
    io_names = {v.name for v in [*model.graph.input, *model.graph.output]}
    for v in list(inferred.value_info):
        t = v.type.tensor_type.elem_type
        if t == onnx.TensorProto.DOUBLE:
            out.append(Finding("warning", v.name, "tensor", "DOUBLE tensor: the engine casts "
                               "it to FLOAT", "keep the model in float32"))
        if trt and t == onnx.TensorProto.UINT8 and v.name not in io_names:
            out.append(Finding("error", v.name, "tensor", "UINT8 inside the graph: TensorRT "
                               "allows UINT8 only as a network input or output",
                               "cast to float or int32 inside, uint8 only at the boundary"))
    for v in model.graph.input:
        dims = v.type.tensor_type.shape.dim
        dynamic = [d.dim_param or "?" for d in dims if not d.HasField("dim_value")]
        if dynamic:
            out.append(Finding("info", v.name, "input", f"dynamic dimensions {dynamic}",
                               "TensorRT needs an optimisation profile (min/opt/max shapes) "
                               "for them" if trt else "OpenVINO reshapes at compile time"))
    return out


def summarize(findings: list[Finding]) -> dict[str, int]:
    return {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
