"""Class sets: names, palette and the ignore index travel together, from the dataset into
checkpoints and artifacts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgeseg.core.errors import UsageError

IGNORE_INDEX = 255


@dataclass(frozen=True)
class ClassSet:
    name: str
    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if not self.names:
            raise UsageError(f"class set {self.name!r} has no classes")
        if len(self.names) != len(self.palette):
            raise UsageError(
                f"class set {self.name!r}: {len(self.names)} names but {len(self.palette)} "
                "palette colours"
            )
        if len(set(self.names)) != len(self.names):
            raise UsageError(f"class set {self.name!r} repeats a class name")
        if len(self.names) >= self.ignore_index:
            raise UsageError(
                f"class set {self.name!r}: {len(self.names)} classes collide with ignore "
                f"index {self.ignore_index}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        return {"name": self.name, "names": list(self.names),
                "palette": [list(c) for c in self.palette], "ignore_index": self.ignore_index}

    @classmethod
    def from_dict(cls, d: dict, source: str = "class set") -> ClassSet:
        try:
            return cls(
                name=str(d.get("name", "custom")),
                names=tuple(str(n) for n in d["names"]),
                palette=tuple(tuple(int(v) for v in c) for c in d["palette"]),
                ignore_index=int(d.get("ignore_index", IGNORE_INDEX)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(
                f"{source}: expected 'names' (list of strings) and 'palette' (list of [r, g, b])"
                f": {e}"
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> ClassSet:
        """Read a class set from JSON or TOML ({names = [...], palette = [[r,g,b], ...]})."""
        path = Path(path)
        text = path.read_text()
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


CITYSCAPES = ClassSet(
    "cityscapes",
    ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
     "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
     "motorcycle", "bicycle"),
    ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
     (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
     (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
     (0, 80, 100), (0, 0, 230), (119, 11, 32)),
)

# CamVid's 11 classes as in SegNet's split (label 11, "void", is ignored).
CAMVID = ClassSet(
    "camvid",
    ("sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car",
     "pedestrian", "bicyclist"),
    ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
     (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
)



def voc_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """PASCAL VOC's colour map: the bits of a class id spread over R, G and B, three at a
    time from the high bit down (the palette of its label PNGs)."""
    out = []
    for c in range(n):
        r = g = b = 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        out.append((r, g, b))
    return tuple(out)


VOC = ClassSet(
    "voc",
    ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
     "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
     "sheep", "sofa", "train", "tvmonitor"),
    voc_palette(21),
)

# COCO-Stuff's 171 classes as most reimplementations train it (CoinCheung/BiSeNet among them):
# the 182 label ids less the 11 thing ids that have no annotation, the 80 things in COCO's id
# order, then the 91 stuff classes. The dataset defines no colours; the VOC colour map from
# its second entry on keeps black free for unlabelled pixels.
COCO_STUFF = ClassSet(
    "coco-stuff",
    ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
     "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
     "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
     "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
     "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
     "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
     "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
     "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
     "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
     "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
     "toothbrush",
     "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
     "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds",
     "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence",
     "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower", "fog",
     "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill",
     "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud",
     "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic", "platform",
     "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad",
     "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs",
     "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree",
     "vegetable", "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone",
     "wall-tile", "wall-wood", "water-other", "waterdrops", "window-blind", "window-other",
     "wood"),
    voc_palette(172)[1:],
)

# The synthetic street scenes: Cityscapes' names and colours for the classes they draw.
SYNTHETIC = ClassSet(
    "synthetic",
    ("road", "sidewalk", "building", "vegetation", "sky", "car", "person", "pole"),
    ((128, 64, 128), (244, 35, 232), (70, 70, 70), (107, 142, 35), (70, 130, 180),
     (0, 0, 142), (220, 20, 60), (153, 153, 153)),
)
