"""The optimisation profile of a TensorRT build: MIN/OPT/MAX input shapes for a dynamic
batch, or a dynamic batch and size within the artifact's size range (core/shapes.py). Plain
data, like plan.py, so it is tested without TensorRT."""

from __future__ import annotations

from edgeseg.core.errors import UsageError
from edgeseg.core.shapes import size_range

DEFAULT_MAX_BATCH = 8


class PlanError(UsageError):
    """A build that cannot be made as asked; the message says why and what to do instead."""


def parse_shapes(text: str, static: list, fill: list[list] | None = None,
                 size_range: tuple | None = None) -> list[list[int]]:
    """MIN/OPT/MAX as batch sizes ("1/4/8") or full shapes ("1x3x512x1024/..."). A batch
    size takes the rest of its shape from `fill` (min, opt and max shapes; default the static
    shape). `size_range`: ((min_h, min_w), (max_h, max_w)) a dynamic height and width
    ("height"/"width" in `static`) must lie in."""
    parts = text.split("/")
    if len(parts) != 3:
        raise PlanError(f"--shapes {text!r}: give MIN/OPT/MAX, e.g. 1/4/8 or "
                        "1x3x512x1024/4x3x512x1024/8x3x512x1024")
    out = []
    for k, p in enumerate(parts):
        try:
            dims = [int(d) for d in p.lower().split("x")]
        except ValueError:
            raise PlanError(f"--shapes {text!r}: {p!r} is not a number or NxCxHxW") from None
        if len(dims) == 1:
            dims = [dims[0], *(fill[k] if fill else static)[1:]]
        if len(dims) != len(static) or min(dims) < 1:
            raise PlanError(f"--shapes {text!r}: {p!r} must have {len(static)} positive dims")
        fixed = [(i, d, s) for i, (d, s) in enumerate(zip(dims, static)) if isinstance(s, int)
                 and d != s]
        if fixed:
            i, d, s = fixed[0]
            free = "batch, height and width are" if size_range else "batch is"
            raise PlanError(f"--shapes {text!r}: dimension {i} is fixed at {s} in this "
                            f"artifact, got {d}; only the {free} dynamic")
        if size_range is not None and "height" in static and "width" in static:
            hw = (dims[static.index("height")], dims[static.index("width")])
            (lo_h, lo_w), (hi_h, hi_w) = size_range
            if not (lo_h <= hw[0] <= hi_h and lo_w <= hw[1] <= hi_w):
                raise PlanError(f"--shapes {text!r}: {hw[0]}x{hw[1]} is outside the "
                                f"artifact's size range {lo_h}x{lo_w}:{hi_h}x{hi_w} (the "
                                "sizes its parity was checked at); re-export with a wider "
                                "--size-range")
        out.append(dims)
    if not all(a <= b for lo, hi in zip(out, out[1:]) for a, b in zip(lo, hi)):
        raise PlanError(f"--shapes {text!r}: need MIN <= OPT <= MAX in every dimension")
    return out


def profile(inp: dict, shapes: str | None) -> tuple[dict | None, list[str]]:
    """(the optimisation profile for a dynamic input, or None; the notes)."""
    static = list(inp["shape"])
    if any(not isinstance(d, int) for d in static):
        text = shapes or f"1/1/{DEFAULT_MAX_BATCH}"
        notes, fill, rng = [], None, size_range(inp)
        if rng is not None:  # height and width: the range's ends, the nominal size as opt
            fill = [[d if isinstance(d, int) else {"height": hw[0], "width": hw[1]}.get(d, 1)
                     for d in static] for hw in (rng[0], inp["size"], rng[1])]
        if not shapes:
            what = "dynamic batch" if rng is None else (
                f"dynamic batch and size: {'x'.join(map(str, rng[0]))} / "
                f"{'x'.join(map(str, inp['size']))} / {'x'.join(map(str, rng[1]))}, batch")
            notes.append(f"{what}: profile 1/1/{DEFAULT_MAX_BATCH} (set --shapes)")
        return {inp["name"]: parse_shapes(text, static, fill, rng)}, notes
    if shapes:
        raise PlanError(f"--shapes: this artifact's input is static {static}; export with "
                        "--dynamic batch (or size) for a range of shapes")
    return None, []
