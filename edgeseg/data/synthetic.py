"""Synthetic street scenes: deterministic, procedural, learnable but not trivial.

One street seen from a car: a horizon and a vanishing point; road and sidewalks whose widths
follow the perspective; building facades along the street whose roof lines converge to the
vanishing point (windows, varied materials), gaps of sky and trees; cars on the road, people
on the sidewalks and poles at the kerb, all sized by their depth and drawn far to near so
they occlude each other. Lighting, colour casts, shadows, blur and sensor noise vary per
image, and colours overlap between classes (grey cars on grey roads, grey facades), so that
texture, shape and context matter. Poles are a few pixels wide at any resolution and
people are small: the thin and small classes are the hard ones, as in real data. Some
images have an ego-vehicle hood at the bottom, labelled ignore (255) as in Cityscapes.

`render_scene(seed, size)` is a pure function of its arguments: the same seed gives the
same image and labels on every machine.
"""

from __future__ import annotations

import numpy as np

from edgeseg.core.errors import UsageError
from edgeseg.core.memory import check_size
from edgeseg.core.progress import progress_bar
from edgeseg.data.classes import IGNORE_INDEX, SYNTHETIC
from edgeseg.data.io import atomic_output_dir, write_image_png, write_label_png

ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, PERSON, POLE = range(SYNTHETIC.num_classes)
assert SYNTHETIC.names[POLE] == "pole"


class Canvas:
    """An RGB float image and its label map, painted in place."""

    def __init__(self, h: int, w: int, rng: np.random.Generator) -> None:
        self.h, self.w, self.rng = h, w, rng
        self.img = np.zeros((h, w, 3), np.float32)
        self.lab = np.full((h, w), IGNORE_INDEX, np.uint8)

    def paint(self, mask: np.ndarray, color, cls: int, texture: float = 8.0,
              box: tuple[int, int, int, int] | None = None) -> None:
        """Paint `color` (+ per-pixel noise of std `texture`) where `mask` is true; `box`
        (y0, y1, x0, x1) says where a cropped mask lies."""
        y0, y1, x0, x1 = box if box else (0, self.h, 0, self.w)
        if not mask.any():
            return
        region = self.img[y0:y1, x0:x1]
        noise = self.rng.normal(0.0, texture, (int(mask.sum()), 1)).astype(np.float32)
        # `color` is one RGB triple, or one per masked pixel (N x 3).
        region[mask] = np.asarray(color, np.float32) + noise
        self.lab[y0:y1, x0:x1][mask] = cls


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a random grid, bilinearly interpolated."""
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    ys, xs = np.arange(h) / cell, np.arange(w) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a, b = grid[y0][:, x0], grid[y0][:, x0 + 1]
    c, d = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _grey(rng: np.random.Generator, lo: float, hi: float, tint: float = 8.0) -> np.ndarray:
    return rng.uniform(lo, hi) + rng.uniform(-tint, tint, 3)


def _box(cv: Canvas, y0: float, y1: float, x0: float, x1: float):
    """Integer box clipped to the canvas, or None when empty."""
    b = (max(0, int(y0)), min(cv.h, int(np.ceil(y1))), max(0, int(x0)), min(cv.w, int(np.ceil(x1))))
    return b if b[0] < b[1] and b[2] < b[3] else None


def _ellipse(cv: Canvas, cy: float, cx: float, ry: float, rx: float, wobble: float = 0.0):
    """Mask and box of an ellipse; `wobble` roughens its outline (tree crowns)."""
    box = _box(cv, cy - ry * (1 + wobble), cy + ry * (1 + wobble) + 1,
               cx - rx * (1 + wobble), cx + rx * (1 + wobble) + 1)
    if box is None:
        return None, None
    yy, xx = np.mgrid[box[0]:box[1], box[2]:box[3]].astype(np.float32)
    dy, dx = (yy - cy) / max(ry, 0.5), (xx - cx) / max(rx, 0.5)
    r = np.sqrt(dy**2 + dx**2)
    if wobble:
        ang = np.arctan2(dy, dx)
        ph = cv.rng.uniform(0, 2 * np.pi, 3)
        r = r / (1 + wobble * (0.5 * np.sin(5 * ang + ph[0]) + 0.3 * np.sin(9 * ang + ph[1])
                               + 0.2 * np.sin(13 * ang + ph[2])))
    return r <= 1.0, box


class Street:
    """The perspective of one scene: rows below the horizon have depth factor
    d = (y - horizon) / (h - horizon), 1 at the bottom row, 0 at the horizon."""

    def __init__(self, cv: Canvas) -> None:
        rng, h, w = cv.rng, cv.h, cv.w
        self.horizon = int(h * rng.uniform(0.36, 0.5))
        self.vx = w * rng.uniform(0.38, 0.62)
        self.bottom_cx = self.vx + w * rng.uniform(-0.12, 0.12)
        self.road_half = w * rng.uniform(0.42, 0.62)  # road half-width at d = 1
        self.walk = w * rng.uniform(0.14, 0.26)  # sidewalk width at d = 1
        self.span = h - self.horizon

    def depth_rows(self) -> np.ndarray:
        y = np.arange(self.span + self.horizon, dtype=np.float32)
        return np.clip((y - self.horizon) / self.span, 0.0, None)

    def center(self, d):
        return self.vx + (self.bottom_cx - self.vx) * d

    def row(self, d: float) -> float:
        return self.horizon + d * self.span

    def outer_depth(self, x: np.ndarray, side: int) -> np.ndarray:
        """Depth at which the sidewalk's outer edge passes column x (left side -1, right +1)."""
        slope = (self.bottom_cx - self.vx) + side * (self.road_half + self.walk)
        return np.clip((x - self.vx) / slope, 0.0, None)


def _sky_and_ground(cv: Canvas, st: Street) -> None:
    rng, h, w = cv.rng, cv.h, cv.w
    yy = np.arange(h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    xx = np.ones((h, 1), np.float32) * np.arange(w, dtype=np.float32)[None, :]
    overcast = rng.random() < 0.35
    top = _grey(rng, 150, 200, 6) if overcast else np.array([rng.uniform(60, 120),
                                                             rng.uniform(120, 170), 230.0])
    low = top + rng.uniform(20, 50)
    t = (yy / max(st.horizon, 1))[..., None]
    sky = top * (1 - t) + low * t + 18 * smooth_noise(rng, h, w, max(4, w // 10))[..., None]
    cv.paint(yy < st.horizon, sky[yy < st.horizon], SKY, texture=2.0)

    d = st.depth_rows()[:, None]
    off = np.abs(xx - st.center(d))
    ground = yy >= st.horizon
    road = ground & (off < st.road_half * d)
    walk = ground & ~road & (off < (st.road_half + st.walk) * d)
    asphalt = _grey(rng, 60, 120, 5) + 14 * smooth_noise(rng, h, w, max(3, w // 40))[..., None]
    cv.paint(road, asphalt[road], ROAD, texture=7.0)
    # Lane markings: dashed lines along the road's centre and a third of the way out (road).
    z = 1.0 / np.maximum(d, 1e-3)
    dash = (np.floor(z * rng.uniform(1.5, 3.0)) % 2) == 0
    for frac in (0.0, -0.5, 0.5)[: rng.integers(1, 4)]:
        line = road & dash & (np.abs(xx - st.center(d) - frac * st.road_half * d)
                              < np.maximum(0.8, 0.012 * w * d))
        cv.paint(line, _grey(rng, 190, 235, 4), ROAD, texture=6.0)
    paving = _grey(rng, 105, 175, 12) if rng.random() < 0.7 else np.array([150.0, 95, 90])
    tiles = ((np.floor(z * 4) + np.floor(off / np.maximum(0.05 * w * d, 1))) % 2)[..., None]
    cv.paint(walk, (paving + tiles * rng.uniform(-14, 14))[walk], SIDEWALK, texture=9.0)
    # Beyond the sidewalks: verges of grass (vegetation), mostly hidden by the facades.
    verge = ground & ~road & ~walk
    grass = np.array([rng.uniform(50, 110), rng.uniform(90, 150), rng.uniform(30, 70)])
    cv.paint(verge, grass, VEGETATION, texture=16.0)


def _facades(cv: Canvas, st: Street) -> None:
    """Facades along both sides: for column x, the facade stands on the sidewalk's outer edge
    at depth d(x) and reaches up k * (its ground row - horizon), k varying per building."""
    rng, w = cv.rng, cv.w
    xs = np.arange(w, dtype=np.float32)
    for side in (-1, 1):
        cols = xs < st.vx if side < 0 else xs >= st.vx
        d = st.outer_depth(xs, side)
        ground = st.horizon + d * st.span
        # Segment the street into buildings by depth: z = 1/d is linear along the street.
        z = 1.0 / np.maximum(d, 1e-3)
        edges = np.cumsum(rng.uniform(0.6, 2.5, 64))
        seg = np.searchsorted(edges, z)
        kinds = rng.random(65)
        heights = rng.uniform(0.6, 4.0, 65)
        for s in np.unique(seg[cols]):
            idx = np.nonzero(cols & (seg == s))[0]
            if kinds[s] < 0.15 or idx.size == 0:
                continue  # a gap: sky and ground show through
            x0, x1 = int(idx[0]), int(idx[-1]) + 1  # a segment is a run of columns
            g = ground[x0:x1]
            roof = g - heights[s] * (g - st.horizon)
            box = _box(cv, roof.min(), g.max(), x0, x1)
            if box is None:
                continue
            yy = np.arange(box[0], box[1], dtype=np.float32)[:, None]
            mask = (yy >= roof[None, :]) & (yy < g[None, :])
            if kinds[s] < 0.3:
                _hedge_or_trees(cv, mask, roof, g, box)
                continue
            base = (_grey(rng, 70, 200, 20) if rng.random() < 0.6 else
                    np.array([rng.uniform(120, 190), rng.uniform(70, 120), rng.uniform(50, 90)]))
            v = (g[None, :] - yy) / np.maximum(g - st.horizon, 1e-3)[None, :]
            win = (((v * rng.uniform(3, 7)) % 1 > 0.45)
                   & ((z[x0:x1] * rng.uniform(3, 8)) % 1 > 0.4)[None])
            col = np.broadcast_to(base, mask.shape + (3,)).copy()
            col[win] = col[win] * rng.uniform(0.35, 0.7) + rng.uniform(0, 30)
            cv.paint(mask, col[mask], BUILDING, texture=9.0, box=box)


def _hedge_or_trees(cv: Canvas, mask: np.ndarray, roof: np.ndarray, ground: np.ndarray,
                    box: tuple[int, int, int, int]) -> None:
    rng = cv.rng
    h, w = mask.shape
    leaf = np.array([rng.uniform(30, 90), rng.uniform(80, 150), rng.uniform(20, 70)])
    field = leaf + 25 * smooth_noise(rng, h, w, max(2, cv.w // 60))[..., None]
    # Foliage is ragged at the top: cut the mask with a noisy roof line.
    rag = (ground - roof) * 0.25 * smooth_noise(rng, 1, w, max(2, cv.w // 30))[0]
    yy = np.arange(box[0], box[1], dtype=np.float32)[:, None]
    ragged = mask & (yy >= (roof + np.abs(rag))[None, :])
    cv.paint(ragged, field[ragged], VEGETATION, texture=14.0, box=box)


def _tree(cv: Canvas, st: Street, d: float, x: float) -> None:
    rng, foot = cv.rng, st.row(d)
    size = d * st.span
    trunk_w = max(1.5, 0.025 * size)
    top = foot - size * rng.uniform(0.8, 1.6)
    b = _box(cv, top + 0.4 * size * 0.5, foot, x - trunk_w, x + trunk_w)
    if b:
        cv.paint(np.ones((b[1] - b[0], b[3] - b[2]), bool), _grey(rng, 50, 90), VEGETATION, 8, b)
    r = size * rng.uniform(0.25, 0.45)
    mask, box = _ellipse(cv, top + r * 0.6, x, r * rng.uniform(0.8, 1.1), r, wobble=0.25)
    if mask is not None:
        leaf = np.array([rng.uniform(30, 100), rng.uniform(90, 160), rng.uniform(20, 60)])
        cv.paint(mask, leaf, VEGETATION, texture=18.0, box=box)


def _car(cv: Canvas, st: Street, d: float, lane: float) -> None:
    rng = cv.rng
    foot, cx = st.row(d), st.center(d) + lane * st.road_half * d
    width = rng.uniform(0.28, 0.4) * st.road_half * d * 2
    height = width * rng.uniform(0.55, 0.8)
    paint = (_grey(rng, 30, 220, 10) if rng.random() < 0.5 else rng.uniform(20, 220, 3))
    body = _box(cv, foot - height * 0.6, foot - height * 0.08, cx - width / 2, cx + width / 2)
    cabin = _box(cv, foot - height, foot - height * 0.55, cx - width * 0.36, cx + width * 0.36)
    for b, col in ((body, paint), (cabin, paint * 0.5 + 20)):
        if b:
            cv.paint(np.ones((b[1] - b[0], b[3] - b[2]), bool), col, CAR, 6, b)
    for wx in (-0.32, 0.32):
        mask, box = _ellipse(cv, foot - height * 0.1, cx + wx * width, height * 0.12,
                             width * 0.1)
        if mask is not None:
            cv.paint(mask, _grey(rng, 15, 35, 2), CAR, 4, box)


def _person(cv: Canvas, st: Street, d: float, x: float) -> None:
    rng, foot = cv.rng, st.row(d)
    tall = d * st.span * rng.uniform(0.5, 0.75)
    if tall < 4:
        return
    half = max(1.0, tall * 0.13)
    shirt, trousers = rng.uniform(20, 230, 3), rng.uniform(20, 160, 3)
    legs = _box(cv, foot - tall * 0.48, foot, x - half, x + half)
    torso = _box(cv, foot - tall * 0.85, foot - tall * 0.46, x - half * 1.2, x + half * 1.2)
    for b, col in ((legs, trousers), (torso, shirt)):
        if b:
            cv.paint(np.ones((b[1] - b[0], b[3] - b[2]), bool), col, PERSON, 10, b)
    mask, box = _ellipse(cv, foot - tall * 0.92, x, tall * 0.08, half * 0.9)
    if mask is not None:
        cv.paint(mask, np.array([rng.uniform(120, 220), rng.uniform(80, 170), 80.0]), PERSON,
                 8, box)


def _pole(cv: Canvas, st: Street, d: float, x: float) -> None:
    rng, foot = cv.rng, st.row(d)
    # At least ~3 px wide at a 256-px-wide image, so the class stays learnable when small.
    half = max(1.5 * cv.w / 256, 0.012 * d * cv.w) / 2
    top = foot - d * st.span * rng.uniform(1.4, 2.6)
    col = _grey(rng, 60, 170, 10)
    b = _box(cv, top, foot, x - half, x + half)
    if b:
        cv.paint(np.ones((b[1] - b[0], b[3] - b[2]), bool), col, POLE, 6, b)
    if rng.random() < 0.4:  # a lamp arm over the road, still pole
        arm = (1 if x < st.center(d) else -1) * d * st.road_half * rng.uniform(0.2, 0.4)
        b = _box(cv, top, top + 2 * half, min(x, x + arm), max(x, x + arm))
        if b:
            cv.paint(np.ones((b[1] - b[0], b[3] - b[2]), bool), col, POLE, 6, b)


def _objects(cv: Canvas, st: Street) -> None:
    """Cars, people, poles and trees at random depths, drawn far to near (occlusion)."""
    rng = cv.rng
    items = []
    for _ in range(rng.integers(1, 6)):
        items.append((rng.uniform(0.12, 1.0), _car, rng.uniform(-0.6, 0.6)))
    for _ in range(rng.integers(1, 8)):
        d = rng.uniform(0.15, 1.0)
        side = rng.choice([-1, 1])
        x = st.center(d) + side * (st.road_half + st.walk * rng.uniform(0.2, 0.9)) * d
        items.append((d, _person, x))
    for _ in range(rng.integers(1, 6)):
        d = rng.uniform(0.15, 1.0)
        x = st.center(d) + rng.choice([-1, 1]) * (st.road_half + st.walk * 0.12) * d
        items.append((d, _pole, x))
    for _ in range(rng.integers(0, 4)):
        d = rng.uniform(0.2, 1.0)
        x = st.center(d) + rng.choice([-1, 1]) * (st.road_half + st.walk * 0.75) * d
        items.append((d, _tree, x))
    for d, draw, where in sorted(items, key=lambda t: t[0]):
        draw(cv, st, d, where)


def _camera(cv: Canvas) -> np.ndarray:
    """Ego hood (ignore), shadows, lighting, colour cast, blur and noise; returns uint8 RGB."""
    rng, h, w = cv.rng, cv.h, cv.w
    img = cv.img
    if rng.random() < 0.3:
        xx = np.arange(w, dtype=np.float32)
        top = h * (1 - rng.uniform(0.06, 0.12)) + h * 0.05 * ((xx / w - 0.5) * 2) ** 2
        hood = np.arange(h, dtype=np.float32)[:, None] >= top[None, :]
        cv.paint(hood, _grey(rng, 10, 60, 5), IGNORE_INDEX, texture=4.0)
    if rng.random() < 0.5:  # a cast shadow: a darkened half-plane
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, np.pi)
        side = (xx - rng.uniform(0, w)) * np.cos(a) + (yy - rng.uniform(h / 2, h)) * np.sin(a)
        img[side > 0] *= rng.uniform(0.45, 0.8)
    img = img * rng.uniform(0.6, 1.3) * rng.uniform(0.88, 1.12, 3) + rng.uniform(-20, 20)
    if rng.random() < 0.5:
        img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1) + np.roll(img, (1, 1), (0, 1))) / 4
    img = img + rng.normal(0, rng.uniform(2, 9), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_scene(seed: int, size: tuple[int, int] = (256, 512)) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (HxWx3 uint8 RGB image, HxW uint8 train-id labels with 255 = ignore)."""
    h, w = size
    if h < 32 or w < 32:
        raise UsageError(f"synthetic scenes need at least 32x32 pixels, got {h}x{w}")
    check_size(h, w, in_itemsize=4, out_itemsize=1)  # the float canvas and the labels
    cv = Canvas(h, w, np.random.default_rng([seed, h, w]))
    st = Street(cv)
    _sky_and_ground(cv, st)
    _facades(cv, st)
    _objects(cv, st)
    img = _camera(cv)
    return img, cv.lab


def write_dataset(out, num: int, size: tuple[int, int] = (256, 512), seed: int = 0,
                  val_fraction: float = 0.2, overwrite: bool = False,
                  progress: bool = True):
    """Write `num` scenes in the Cityscapes layout (train and val splits, `classes.json` at the
    root); image i is `render_scene(seed * 1_000_003 + i, size)`. Returns the output path."""
    from pathlib import Path


    if num < 2:
        raise UsageError(f"need at least 2 scenes (one train, one val), got {num}")
    if not 0.0 < val_fraction < 1.0:
        raise UsageError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if seed < 0:
        raise UsageError(f"seed must be >= 0, got {seed}")
    n_val = min(num - 1, max(1, round(num * val_fraction)))
    out = Path(out)
    with atomic_output_dir(out, overwrite=overwrite, flag="--force") as tmp:
        SYNTHETIC.save(tmp / "classes.json")
        for i in progress_bar(range(num), desc="synth", enable=progress):
            split = "val" if i >= num - n_val else "train"
            img, lab = render_scene(seed * 1_000_003 + i, size)
            stem = f"synth_{i // 1000:06d}_{i % 1000:06d}"
            for sub in ("leftImg8bit", "gtFine"):
                (tmp / sub / split / "synth").mkdir(parents=True, exist_ok=True)
            write_image_png(tmp / "leftImg8bit" / split / "synth" / f"{stem}_leftImg8bit.png", img)
            write_label_png(tmp / "gtFine" / split / "synth" / f"{stem}_gtFine_labelTrainIds.png",
                            lab, SYNTHETIC.palette)
    return out
