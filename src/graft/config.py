"""The one typed loader of ``params.yaml``.

Every stage, the Prefect flow and the tests read parameters through :func:`load`.
Unknown or misspelt keys, wrong types and impossible values fail here, naming the
parameter and the fix, before any stage does work.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_PARAMS = Path("params.yaml")

FASHION_MNIST_CLASSES = (
    "T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot",
)  # Fashion-MNIST label order; "/" in "T-shirt/top" is not allowed in a folder name.


class ConfigError(ValueError):
    """params.yaml is missing, malformed, or has a value graft cannot use."""


@dataclass(frozen=True, kw_only=True)
class Paths:
    raw: Path = Path("data/raw")
    source: Path = Path("data/raw/source")
    target: Path = Path("data/raw/target")
    validation: Path = Path("reports/validation")
    split: Path = Path("data/split")
    source_model: Path = Path("models/source.keras")
    head_model: Path = Path("models/head.keras")
    finetuned_model: Path = Path("models/finetuned.keras")
    export: Path = Path("models/export")
    metrics: Path = Path("metrics")
    blessed: Path = Path("registry/blessed.json")
    plots: Path = Path("plots")


@dataclass(frozen=True, kw_only=True)
class Data:
    target: str = "fashion_mnist"  # or "folder": your own images at paths.target
    fashion_mnist_dir: Path | None = None  # None: Debian package, then Keras cache, then download
    source_classes: tuple[str, ...] = tuple(c for c in FASHION_MNIST_CLASSES if c not in ("Sandal", "Shirt"))
    target_classes: tuple[str, ...] = ("Sandal", "Shirt")
    source_per_class: int | None = None  # cap on source training images per class (None: all)
    source_test_per_class: int | None = None
    target_train_pool_per_class: int | None = None  # cap on default target images written (None: all)
    target_test_per_class: int | None = None


@dataclass(frozen=True, kw_only=True)
class Image:
    height: int = 28
    width: int = 28
    channels: int = 1  # what the model takes: 1 (grayscale) or 3 (RGB)


@dataclass(frozen=True, kw_only=True)
class Validate:
    min_images_per_class: int = 10


@dataclass(frozen=True, kw_only=True)
class Split:
    train_per_class: int | None = 100  # None: everything not in valid/test
    valid_per_class: int | None = 1000  # None: all that remain after train
    test_fraction: float = 0.2  # used only when the data has no test/ folder


@dataclass(frozen=True, kw_only=True)
class Base:
    kind: str = "compact_cnn"  # or a keras.applications name: mobilenet_v2, vgg16
    weights: str = "none"  # applications: imagenet | none | path to a weights file
    filters: tuple[int, ...] = (16, 32, 64)  # compact_cnn: filters per block
    convs_per_block: int = 2
    input_size: int = 96  # applications: images are resized to this inside the model


@dataclass(frozen=True, kw_only=True)
class Fit:
    epochs: int
    batch_size: int = 32
    lr: float = 1e-3


@dataclass(frozen=True, kw_only=True)
class Pretrain(Fit):
    epochs: int = 4
    batch_size: int = 128
    valid_fraction: float = 0.1


@dataclass(frozen=True, kw_only=True)
class Head(Fit):
    epochs: int = 20
    dropout: float = 0.2


@dataclass(frozen=True, kw_only=True)
class Finetune(Fit):
    epochs: int = 10
    lr: float = 1e-4
    unfreeze: int | str = 6  # top N layers of the base, or a block name prefix such as "block3"


@dataclass(frozen=True, kw_only=True)
class Export:
    opset: int = 17
    tolerance: float = 1e-4
    quantize: bool = True  # also try an int8 model (onnxruntime static QDQ quantization)
    int8_max_drop: float = 0.5  # ship int8 only if its test accuracy is at most this many points lower
    calibration_images: int = 200  # train images used to calibrate int8 activation ranges
    allow_unblessed: bool = False  # publish even when the gate refused the model


@dataclass(frozen=True, kw_only=True)
class Scratch:
    enabled: bool = True  # train the same architecture from random weights, to measure transfer's lift


@dataclass(frozen=True, kw_only=True)
class Gate:
    min_accuracy: float = 0.99
    min_class_recall: float = 0.98
    max_regression: float = 0.005  # accuracy (as a fraction) the model may lose against the last blessed one


@dataclass(frozen=True, kw_only=True)
class Params:
    seed: int = 42
    distribute: str = "none"  # tf.distribute for train_head and finetune: none | mirrored | multi_worker
    paths: Paths = field(default_factory=Paths)
    data: Data = field(default_factory=Data)
    image: Image = field(default_factory=Image)
    validate: Validate = field(default_factory=Validate)
    split: Split = field(default_factory=Split)
    base: Base = field(default_factory=Base)
    pretrain: Pretrain = field(default_factory=Pretrain)
    head: Head = field(default_factory=Head)
    finetune: Finetune = field(default_factory=Finetune)
    scratch: Scratch = field(default_factory=Scratch)
    gate: Gate = field(default_factory=Gate)
    export: Export = field(default_factory=Export)


def load(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and check ``params.yaml``; raise :class:`ConfigError` naming the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such params file; run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    params = _build(Params, raw, file=path, key="")
    _check(params, where=str(path))
    return params


def _build(cls, raw, *, file: Path, key: str):
    where = f"{file}: {key or 'top level'}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    return cls(**{name: _coerce(hints[name], value, file=file, key=f"{key}.{name}".lstrip("."))
                  for name, value in raw.items()})


def _coerce(hint, value, *, file: Path, key: str):
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, file=file, key=key)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [o for o in typing.get_args(hint) if o is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        for option in options:
            try:
                return _coerce(option, value, file=file, key=key)
            except ConfigError:
                continue
        names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
        raise ConfigError(f"{file}: {key}: expected {names}, got {value!r}")
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{file}: {key}: expected a list, got {value!r}")
        return tuple(_coerce(item, v, file=file, key=key) for v in value)
    if hint is Path and isinstance(value, str) and value:
        return Path(value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint in (int, str) and isinstance(value, hint) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    raise ConfigError(f"{file}: {key}: expected {hint.__name__}, got {value!r}")


def _check(p: Params, *, where: str) -> None:
    def fail(key: str, message: str) -> typing.NoReturn:
        raise ConfigError(f"{where}: {key}: {message}")

    if p.data.target not in ("fashion_mnist", "folder"):
        fail("data.target", f"{p.data.target!r}; use 'fashion_mnist' (the default data) "
             "or 'folder' (your images at paths.target)")
    if p.data.target == "folder" and _inside(p.paths.target, p.paths.raw):
        fail("paths.target", f"{p.paths.target} is inside paths.raw ({p.paths.raw}), which DVC deletes before ingest runs; "
             "keep your own images outside it")
    if p.data.target == "fashion_mnist":
        unknown = [c for c in (*p.data.source_classes, *p.data.target_classes) if c not in FASHION_MNIST_CLASSES]
        if unknown:
            fail("data.target_classes", f"{unknown} are not Fashion-MNIST classes; choose from {list(FASHION_MNIST_CLASSES)}")
    if len(set(p.data.target_classes)) < 2:
        fail("data.target_classes", "list at least two distinct classes")
    if set(p.data.source_classes) & set(p.data.target_classes):
        fail("data.source_classes", "must not share classes with data.target_classes (the source task is another task)")
    if p.image.channels not in (1, 3):
        fail("image.channels", f"{p.image.channels}; use 1 (grayscale) or 3 (RGB)")
    if min(p.image.height, p.image.width) < 8:
        fail("image.height/width", "images must be at least 8x8")
    if p.validate.min_images_per_class < 1:
        fail("validate.min_images_per_class", "must be at least 1")
    if not 0 < p.split.test_fraction < 1:
        fail("split.test_fraction", "must be between 0 and 1")
    for key in ("train_per_class", "valid_per_class"):
        value = getattr(p.split, key)
        if value is not None and value < 1:
            fail(f"split.{key}", "must be at least 1 (or null)")
    from graft.bases import KINDS  # light module: no TensorFlow import

    if p.base.kind not in KINDS:
        fail("base.kind", f"{p.base.kind!r}; choose one of {sorted(KINDS)}")
    if p.base.kind == "compact_cnn" and p.base.weights != "none":
        fail("base.weights", "compact_cnn is pretrained on the source task; weights must be 'none'")
    if p.base.kind != "compact_cnn" and p.base.weights not in ("imagenet", "none") and not Path(p.base.weights).is_file():
        fail("base.weights", f"{p.base.weights!r} is neither 'imagenet', 'none' nor an existing weights file")
    for name in ("pretrain", "head", "finetune"):
        fit = getattr(p, name)
        if fit.epochs < 1 or fit.batch_size < 1 or fit.lr <= 0:
            fail(name, "epochs and batch_size must be at least 1 and lr positive")
    if p.finetune.lr >= p.head.lr:
        fail("finetune.lr", f"{p.finetune.lr} is not below head.lr ({p.head.lr}); fine-tuning needs a lower learning rate")
    if isinstance(p.finetune.unfreeze, int) and p.finetune.unfreeze < 0:
        fail("finetune.unfreeze", "must be a layer count >= 0 or a block name")
    if p.export.tolerance <= 0 or p.export.int8_max_drop < 0 or p.export.calibration_images < 1:
        fail("export", "tolerance must be positive, int8_max_drop >= 0 and calibration_images >= 1")
    for key in ("min_accuracy", "min_class_recall", "max_regression"):
        if not 0 <= getattr(p.gate, key) <= 1:
            fail(f"gate.{key}", "must be between 0 and 1 (a fraction, not a percentage)")
    from graft.distribute import KINDS as DISTRIBUTE  # no TensorFlow import

    if p.distribute not in DISTRIBUTE:
        fail("distribute", f"{p.distribute!r}; choose one of {', '.join(DISTRIBUTE)} (see graft.distribute)")
    if not 0 < p.pretrain.valid_fraction < 1:
        fail("pretrain.valid_fraction", "must be between 0 and 1")


def _inside(path: Path, parent: Path) -> bool:
    path, parent = path.resolve(), parent.resolve()
    return path == parent or parent in path.parents
