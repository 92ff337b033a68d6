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
    scratch_model: Path = Path("models/scratch")  # folder: the scratch baseline's model.keras (empty when disabled)
    export: Path = Path("models/export")
    metrics: Path = Path("metrics")
    blessed: Path = Path("registry/blessed.json")
    plots: Path = Path("plots")
    features: Path = Path("data/features")  # the frozen base's features of train and valid (DVC-cached)
    backup: Path = Path(".graft/backup")  # training state of an interrupted phase (not a DVC output)


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
    min_images_per_class: int = 10  # usable images (decode, not quarantined) every class needs
    formats: tuple[str, ...] = ("PNG", "JPEG")  # Pillow format names that are decoded; others are bad files
    max_pixels: int = 89_478_485  # decompression-bomb limit (Pillow's default); bigger images are bad files
    min_size: int = 16  # pixels, each way; smaller images are bad files
    on_bad_file: str = "fail"  # fail | quarantine: set bad files aside (quarantine.csv) and go on
    max_imbalance: float = 5.0  # warning when the largest class has more than this many times a class's images
    max_aspect_ratio: float = 3.0  # warning above this long side / short side
    near_duplicate_distance: int = 12  # perceptual-hash bits (of 256) within which images are near-duplicates; -1: off
    near_duplicate_leak: str = "quarantine"  # quarantine | fail: near-duplicates across given train/ valid/ test/
    workers: int = 0  # processes for the manifest; 0: every core


@dataclass(frozen=True, kw_only=True)
class Split:
    # Each duplicate group's split comes from a hash of (seed, content) -> u in [0, 1), cut by the
    # fractions below: stable as data grows. Fractions are of each class's images outside given folders.
    test_fraction: float = 0.2  # only for a class without a given test/ folder
    valid_fraction: float = 0.1667  # only for a class without a given valid/ folder
    train_fraction: float | None = 0.0167  # None: all the rest
    train_per_class: int | None = None  # optional caps: keep the lowest-hash images of a split, the rest unused
    valid_per_class: int | None = None


@dataclass(frozen=True, kw_only=True)
class Base:
    kind: str = "compact_cnn"  # or a keras.applications name: mobilenet_v2, vgg16
    weights: str = "none"  # applications: imagenet | none | path to a weights file
    filters: tuple[int, ...] = (16, 32, 64)  # compact_cnn: filters per block
    convs_per_block: int = 2
    input_size: int = 96  # applications: images are resized to this inside the model
    weights_sha256: str | None = None  # checked against base.weights when that is a file


SCHEDULES = ("constant", "cosine")
CLASS_WEIGHTS = ("none", "balanced")
POOLINGS = ("avg", "flatten")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "swish", "selu", "tanh")
INITIALIZERS = ("auto", "he_normal", "he_uniform", "lecun_normal", "glorot_uniform")
FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")


@dataclass(frozen=True, kw_only=True)
class Fit:
    """How one training phase runs; pretrain, head and finetune each have one."""

    epochs: int
    batch_size: int = 32
    lr: float = 1e-3
    schedule: str = "constant"  # or cosine (decay to 0 over the epochs after warm-up)
    warmup_epochs: int = 0  # linear warm-up from 0 to lr
    clipnorm: float | None = None  # gradient clipping by norm
    patience: int | None = None  # early stopping on val_loss; None: run every epoch
    class_weight: str = "none"  # or balanced: weight classes by n / (classes * count)
    min_steps: int = 0  # at least this many optimizer steps in all: a small set is repeated within each epoch


PRETRAIN_METHODS = ("supervised", "autoencoder")


@dataclass(frozen=True, kw_only=True)
class Pretrain(Fit):
    epochs: int = 4
    batch_size: int = 128
    valid_fraction: float = 0.1
    method: str = "supervised"  # or autoencoder: the base learns to encode unlabelled images (no source labels)
    unlabelled: Path | None = None  # autoencoder: a folder of images; None: paths.target without its test/ images


@dataclass(frozen=True, kw_only=True)
class Head(Fit):
    epochs: int = 20
    pooling: str = "avg"  # avg (global average) or flatten, over the base's feature maps
    dense: tuple[int, ...] = ()  # hidden layers' units between the pooled features and the softmax
    activation: str = "relu"
    initializer: str = "auto"  # auto: He for ReLU variants, LeCun for SELU, Glorot otherwise
    batchnorm: bool = False  # BatchNorm after each hidden layer
    dropout: float = 0.2  # before every Dense layer of the head
    cache_features: bool = True  # train on the frozen base's cached features (not with augmentation)


@dataclass(frozen=True, kw_only=True)
class Finetune(Fit):
    epochs: int = 10
    lr: float | None = None  # None: head.lr * lr_factor
    lr_factor: float = 0.1
    unfreeze: int | float | str = 6  # top N layers, a fraction of the base's layers, or a block name prefix


STRATEGIES = ("auto", "feature_extraction", "finetune_top", "finetune_all", "as_classifier", "scratch")


@dataclass(frozen=True, kw_only=True)
class Advisor:
    """How ``strategy: auto`` places the task in one of four scenarios, or advises against transfer
    (docs/strategies.md)."""

    small_per_class: int = 50  # a class with fewer labelled training images than this makes the set small
    similar_gain: float = 0.0  # probe gain at or above this (0: no more errors than random features): similar
    scratch_below_gain: float | None = -0.25  # probe gain below this: do not transfer, train from scratch; None: never
    min_error_gap: int = 3  # scratch only with at least this many more source-probe errors than random-probe errors
    top_half: float = 0.5  # what "the top half" unfreezes: this fraction of the base's weight layers
    probe_folds: int = 5  # cross-validation folds of the linear probe on the train split
    probe_l2: float = 0.01  # L2 penalty of the linear probe (on standardised features)


@dataclass(frozen=True, kw_only=True)
class Augment:
    """Random transforms of the training images, in both phases; never in valid, test or the export."""

    flip: str = "none"  # horizontal, vertical, horizontal_and_vertical
    rotation: float = 0.0  # fraction of a full turn, e.g. 0.05
    zoom: float = 0.0  # fraction, e.g. 0.1
    translation: float = 0.0  # fraction of height and width

    @property
    def enabled(self) -> bool:
        return self.flip != "none" or any((self.rotation, self.zoom, self.translation))


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
    strategy: str = "auto"  # how much to transfer: see STRATEGIES and docs/strategies.md
    paths: Paths = field(default_factory=Paths)
    data: Data = field(default_factory=Data)
    image: Image = field(default_factory=Image)
    validate: Validate = field(default_factory=Validate)
    split: Split = field(default_factory=Split)
    base: Base = field(default_factory=Base)
    pretrain: Pretrain = field(default_factory=Pretrain)
    head: Head = field(default_factory=Head)
    finetune: Finetune = field(default_factory=Finetune)
    advisor: Advisor = field(default_factory=Advisor)
    augment: Augment = field(default_factory=Augment)
    scratch: Scratch = field(default_factory=Scratch)
    gate: Gate = field(default_factory=Gate)
    export: Export = field(default_factory=Export)

    @property
    def finetune_lr(self) -> float:
        return self.finetune.lr if self.finetune.lr is not None else self.head.lr * self.finetune.lr_factor


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
    if p.strategy not in STRATEGIES:
        fail("strategy", f"{p.strategy!r}; use one of {list(STRATEGIES)} (docs/strategies.md)")
    shared = [c for c in p.data.target_classes if c in p.data.source_classes]
    if p.strategy == "as_classifier":
        if len(shared) < len(p.data.target_classes):
            missing = [c for c in p.data.target_classes if c not in shared]
            fail("strategy", f"as_classifier uses the source model as it is, but it was not trained on {missing}; "
                 "add them to data.source_classes, or choose another strategy")
        if p.base.kind != "compact_cnn" or p.pretrain.method != "supervised":
            fail("strategy", "as_classifier needs a source model with a classifier: base.kind compact_cnn pretrained "
                 "with pretrain.method supervised")
    elif shared:
        fail("data.source_classes", f"shares {shared} with data.target_classes: the source task must be another task, "
             "unless strategy is as_classifier (the source model used as it is)")
    a = p.advisor
    if a.small_per_class < 1:
        fail("advisor.small_per_class", "must be at least 1 image per class")
    if not -1 <= a.similar_gain <= 1:
        fail("advisor.similar_gain", f"{a.similar_gain}; a share of the random-feature probe's errors, in [-1, 1]")
    if a.scratch_below_gain is not None and a.scratch_below_gain > a.similar_gain:
        fail("advisor.scratch_below_gain", f"{a.scratch_below_gain}; must be at most advisor.similar_gain "
             f"({a.similar_gain}): below it the source's features count as worse than a random network's "
             "(null: never advise training from scratch)")
    if p.strategy == "scratch" and not p.scratch.enabled:
        fail("strategy", "scratch ships the scratch stage's model, but scratch.enabled is false; "
             "set scratch.enabled: true, or choose another strategy")
    if a.min_error_gap < 0:
        fail("advisor.min_error_gap", f"{a.min_error_gap}; a number of linear-probe errors, at least 0")
    if not 0 < a.top_half <= 1:
        fail("advisor.top_half", f"{a.top_half}; a fraction of the base's weight layers, in (0, 1]")
    if a.probe_folds < 2 or a.probe_l2 < 0:
        fail("advisor", "probe_folds must be at least 2 and probe_l2 at least 0")
    if p.pretrain.method not in PRETRAIN_METHODS:
        fail("pretrain.method", f"{p.pretrain.method!r}; use one of {list(PRETRAIN_METHODS)}")
    if p.pretrain.method == "autoencoder" and p.base.kind != "compact_cnn":
        fail("pretrain.method", f"autoencoder pretrains the compact CNN; {p.base.kind} comes with its own weights "
             "(set base.kind: compact_cnn or pretrain.method: supervised)")
    if p.pretrain.unlabelled is not None and not p.pretrain.unlabelled.is_dir():
        fail("pretrain.unlabelled", f"{p.pretrain.unlabelled} is not a folder; give a folder of images or null "
             "(the target's own images)")
    if p.image.channels not in (1, 3):
        fail("image.channels", f"{p.image.channels}; use 1 (grayscale) or 3 (RGB)")
    if min(p.image.height, p.image.width) < 8:
        fail("image.height/width", "images must be at least 8x8")
    _check_validate(p.validate, fail)
    _check_split(p.split, fail)
    from graft.bases import KINDS  # light module: no TensorFlow import

    if p.base.kind not in KINDS:
        fail("base.kind", f"{p.base.kind!r}; choose one of {sorted(KINDS)}")
    if p.base.kind == "compact_cnn" and p.base.weights != "none":
        fail("base.weights", "compact_cnn is pretrained on the source task; weights must be 'none'")
    if p.base.kind != "compact_cnn" and p.base.weights not in ("imagenet", "none") and not Path(p.base.weights).is_file():
        fail("base.weights", f"{p.base.weights!r} is neither 'imagenet', 'none' nor an existing weights file")
    for name in ("pretrain", "head", "finetune"):
        fit = getattr(p, name)
        if fit.epochs < 1 or fit.batch_size < 1 or (fit.lr is not None and fit.lr <= 0):
            fail(name, "epochs and batch_size must be at least 1 and lr positive")
        if fit.schedule not in SCHEDULES:
            fail(f"{name}.schedule", f"{fit.schedule!r}; use one of {list(SCHEDULES)}")
        if not 0 <= fit.warmup_epochs < fit.epochs:
            fail(f"{name}.warmup_epochs", f"{fit.warmup_epochs}; must be >= 0 and below {name}.epochs ({fit.epochs})")
        if fit.class_weight not in CLASS_WEIGHTS:
            fail(f"{name}.class_weight", f"{fit.class_weight!r}; use one of {list(CLASS_WEIGHTS)}")
        if fit.patience is not None and fit.patience < 1:
            fail(f"{name}.patience", "must be at least 1 epoch, or null for no early stopping")
        if fit.min_steps < 0:
            fail(f"{name}.min_steps", "must be 0 (epochs alone set the budget) or more")
        if fit.clipnorm is not None and fit.clipnorm <= 0:
            fail(f"{name}.clipnorm", "must be positive, or null for no clipping")
    for key, value, allowed in (("pooling", p.head.pooling, POOLINGS), ("activation", p.head.activation, ACTIVATIONS),
                                ("initializer", p.head.initializer, INITIALIZERS)):
        if value not in allowed:
            fail(f"head.{key}", f"{value!r}; use one of {list(allowed)}")
    if any(units < 1 for units in p.head.dense):
        fail("head.dense", f"{list(p.head.dense)}; every hidden layer needs at least 1 unit")
    if not 0 <= p.head.dropout < 1:
        fail("head.dropout", "must be in [0, 1)")
    if not 0 < p.finetune.lr_factor < 1:
        fail("finetune.lr_factor", f"{p.finetune.lr_factor}; must be between 0 and 1 (fine-tuning needs a lower rate)")
    if p.finetune_lr >= p.head.lr:
        fail("finetune.lr", f"{p.finetune_lr} is not below head.lr ({p.head.lr}); fine-tuning needs a lower learning rate")
    unfreeze = p.finetune.unfreeze
    if isinstance(unfreeze, int) and unfreeze < 0 or isinstance(unfreeze, float) and not 0 < unfreeze <= 1:
        fail("finetune.unfreeze", f"{unfreeze!r}; use a layer count >= 0, a fraction in (0, 1] or a block name")
    if p.augment.flip not in FLIPS:
        fail("augment.flip", f"{p.augment.flip!r}; use one of {list(FLIPS)}")
    for key in ("rotation", "zoom", "translation"):
        if not 0 <= getattr(p.augment, key) < 1:
            fail(f"augment.{key}", "must be a fraction in [0, 1)")
    if p.base.weights_sha256 is not None and len(p.base.weights_sha256) != 64:
        fail("base.weights_sha256", "must be the 64 hex digits of `sha256sum` of base.weights, or null")
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


def _check_validate(v: Validate, fail) -> None:
    from PIL import Image as PILImage

    PILImage.init()
    if v.min_images_per_class < 1:
        fail("validate.min_images_per_class", "must be at least 1")
    unknown = [f for f in v.formats if f not in PILImage.OPEN]
    if not v.formats or unknown:
        fail("validate.formats", f"{unknown or 'empty'}: list Pillow format names, e.g. [PNG, JPEG, WEBP, BMP, TIFF]")
    for key in ("max_pixels", "min_size"):
        if getattr(v, key) < 1:
            fail(f"validate.{key}", "must be at least 1")
    for key in ("max_imbalance", "max_aspect_ratio"):
        if getattr(v, key) < 1:
            fail(f"validate.{key}", "is a ratio of at least 1")
    if v.on_bad_file not in ("fail", "quarantine"):
        fail("validate.on_bad_file", f"{v.on_bad_file!r}; use fail or quarantine")
    if v.near_duplicate_leak not in ("fail", "quarantine"):
        fail("validate.near_duplicate_leak", f"{v.near_duplicate_leak!r}; use quarantine or fail")
    if not -1 <= v.near_duplicate_distance <= 64:
        fail("validate.near_duplicate_distance", "bits of a 256-bit hash: 0 to 64, or -1 to switch the search off")
    if v.workers < 0:
        fail("validate.workers", "must be 0 (every core) or more")


def _check_split(s: Split, fail) -> None:
    for key in ("test_fraction", "valid_fraction", "train_fraction"):
        value = getattr(s, key)
        if value is not None and not 0 < value < 1:
            fail(f"split.{key}", f"{value}: must be between 0 and 1 (a fraction of each class's images)")
    if s.test_fraction + s.valid_fraction + (s.train_fraction or 0) > 1:
        fail("split", "test_fraction + valid_fraction + train_fraction add up to more than 1")
    for key in ("train_per_class", "valid_per_class"):
        value = getattr(s, key)
        if value is not None and value < 1:
            fail(f"split.{key}", "must be at least 1 (or null)")


def _inside(path: Path, parent: Path) -> bool:
    path, parent = path.resolve(), parent.resolve()
    return path == parent or parent in path.parents
