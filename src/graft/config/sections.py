"""The sections of ``params.yaml``: one pydantic model each, with types, choices and bounds.

No field has a default: params.yaml is the only home of the values, and a key missing from it
is an error that names the key. Each field's description is what an editor shows for it (the
published JSON Schema, docs/params.schema.json) and what an error about it says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from graft.data.fashion_mnist import CLASSES as FASHION_MNIST_CLASSES
from graft.model.kinds import KINDS


class ParamError(ValueError):
    """A rule across fields failed; ``key`` is the param the message is about."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


class Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


def _field(description: str, **bounds):
    return Field(description=description, **bounds)


Fraction = Annotated[float, Field(gt=0, lt=1)]
Count = Annotated[int, Field(ge=1)]
Schedule = Literal["constant", "cosine"]
ClassWeight = Literal["none", "balanced"]
BaseKind = Literal[tuple(KINDS)]  # type: ignore[valid-type]  (the backbones graft can build)


class Paths(Section):
    raw: Path = _field("ingest writes the default data here (DVC deletes it before ingest runs)")
    source: Path = _field("where ingest writes the default source task, {train,test}.npz (graft.data.packed); inside paths.raw")
    target: Path = _field("the target task's images; with data.target: folder, your own images (outside paths.raw)")
    validation: Path = _field("the data gate's reports: manifest, GX results and Data Docs")
    report: Path = _field("the run's report: one self-contained HTML page, written by export")
    split: Path = _field("train/ valid/ test/<class>/ and split.csv")
    source_model: Path = _field("model A, the source model")
    head_model: Path = _field("model B after the head phase")
    finetuned_model: Path = _field("model B after fine-tuning: the final model")
    scratch_model: Path = _field("folder: the scratch baseline's model.keras (empty when scratch.enabled is false)")
    export: Path = _field("the published model: model.onnx, model.int8.onnx, labels.json, model_card.md, export.json")
    metrics: Path = _field("the stages' JSON records and DVC metrics")
    plots: Path = _field("DVC plots and the run's pictures")
    features: Path = _field("the frozen base's features of train and valid, computed once (DVC-cached)")
    backup: Path = _field("state of a killed training phase, resumed by the next run (not a DVC output)")


class Data(Section):
    target: Literal["fashion_mnist", "folder"] = _field(
        "fashion_mnist (the default task) or folder (your own images at paths.target)")
    fashion_mnist_dir: Path | None = _field("a folder with the four Fashion-MNIST *-ubyte.gz files; null: the Debian "
                                            "package, then the Keras cache, then a Keras download")
    source_classes: tuple[str, ...] = _field("the source task's classes (Fashion-MNIST names, 'T-shirt_top' for "
                                             "'T-shirt/top')")
    target_classes: tuple[str, ...] = _field("the target task's classes: Fashion-MNIST names, or your class folders")
    source_per_class: Count | None = _field("cap on source training images per class; null: all 6,000")
    source_test_per_class: Count | None = _field("cap on source test images per class; null: all 1,000")
    target_train_pool_per_class: Count | None = _field("cap on the default target's training pool per class; null: all")
    target_test_per_class: Count | None = _field("cap on the default target's test images per class; null: all 1,000")

    @model_validator(mode="after")
    def _classes(self):
        for key in ("source_classes", "target_classes"):
            names = getattr(self, key)
            if twice := sorted({c for c in names if names.count(c) > 1}):
                raise ParamError(f"data.{key}", f"{twice} listed more than once; name each class once")
        if len(set(self.target_classes)) < 2:
            raise ParamError("data.target_classes", "list at least two distinct classes")
        if self.target == "fashion_mnist":
            unknown = [c for c in (*self.source_classes, *self.target_classes) if c not in FASHION_MNIST_CLASSES]
            if unknown:
                raise ParamError("data.target_classes", f"{unknown} are not Fashion-MNIST classes; choose from "
                                 f"{list(FASHION_MNIST_CLASSES)}")
        return self


class Image(Section):
    height: int = _field("pixels: what the model (and model.onnx) takes, uint8 NHWC", ge=8)
    width: int = _field("pixels", ge=8)
    channels: Literal[1, 3] = _field("1 (grayscale) or 3 (RGB)")


class Validate(Section):
    min_images_per_class: Count = _field("usable images every class needs")
    formats: tuple[str, ...] = _field("Pillow format names that are decoded (PNG, JPEG, WEBP, BMP, TIFF, ...); any "
                                      "other file is a bad file", min_length=1)
    max_pixels: Count = _field("decompression-bomb limit (Pillow's default: 89478485); larger images are bad files")
    min_size: Count = _field("pixels each way; smaller images are bad files")
    on_bad_file: Literal["fail", "quarantine"] = _field(
        "fail, or quarantine: set bad files aside in quarantine.csv and leave them out of the split")
    max_imbalance: float = _field("warning: the largest class has more than this many times a class's images", ge=1)
    max_aspect_ratio: float = _field("warning: long side / short side above this", ge=1)
    near_duplicate_distance: int = _field("perceptual-hash bits (of 256) within which two images are near-duplicates; "
                                          "-1: off", ge=-1, le=64)
    near_duplicate_leak: Literal["quarantine", "fail"] = _field(
        "near-duplicates across given train/ valid/ test/: quarantine the non-test copy, or fail")
    workers: int = _field("processes building the manifest; 0: every core", ge=0)

    @model_validator(mode="after")
    def _formats(self):
        from PIL import Image as PILImage

        PILImage.init()
        unknown = [f for f in self.formats if f not in PILImage.OPEN]
        if unknown:
            raise ParamError("validate.formats", f"{unknown}: list Pillow format names, e.g. [PNG, JPEG, WEBP, BMP, TIFF]")
        return self


class Split(Section):
    test_fraction: Fraction = _field("share of each class's pool for test; only for a class without a given test/")
    valid_fraction: Fraction = _field("share for valid; only for a class without a given valid/")
    train_fraction: Fraction | None = _field("share for train; null: all the rest")
    train_per_class: Count | None = _field("cap: keep the lowest-hash train images, the rest stay unused; null: no cap")
    valid_per_class: Count | None = _field("cap on valid images per class; null: no cap")

    @model_validator(mode="after")
    def _sum(self):
        if self.test_fraction + self.valid_fraction + (self.train_fraction or 0) > 1:
            raise ParamError("split", "test_fraction + valid_fraction + train_fraction add up to more than 1")
        return self


class Base(Section):
    kind: BaseKind = _field("compact_cnn (pretrained on the source task) or a keras.applications backbone")
    weights: str = _field("applications: imagenet | none | path/to/notop.weights.h5; compact_cnn: none")
    filters: tuple[Count, ...] = _field("compact_cnn: filters per block (block1, block2, ...)", min_length=1)
    convs_per_block: Count = _field("compact_cnn: convolutions per block")
    input_size: int = _field("applications: pixels are resized to this inside the model", ge=32)
    weights_sha256: str | None = _field("sha256 of base.weights (a file); a mismatch stops pretrain; null: unchecked",
                                        pattern=r"^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _weights(self):
        if self.kind == "compact_cnn" and self.weights != "none":
            raise ParamError("base.weights", "compact_cnn is pretrained on the source task; weights must be 'none'")
        if self.kind != "compact_cnn" and self.weights not in ("imagenet", "none"):
            if not Path(self.weights).is_file():
                raise ParamError("base.weights", f"{self.weights!r} is neither 'imagenet', 'none' nor an existing weights "
                                 "file")
            if self.weights_sha256 is None:  # pinned in params.yaml, a new file's content re-runs pretrain (DVC)
                raise ParamError("base.weights_sha256", f"a local weights file needs its digest, so that DVC re-runs "
                                 f"pretrain when the file changes: set it to the output of `sha256sum {self.weights}`")
        return self


class Fit(Section):
    """How one training phase runs; pretrain, head and finetune each have one."""

    epochs: Count = _field("training epochs (the best epoch by validation loss is kept)")
    batch_size: Count = _field("images a step")
    lr: float | None = _field("Adam's learning rate", gt=0)
    schedule: Schedule = _field("constant, or cosine (decay to 0 over the epochs after warm-up)")
    warmup_epochs: int = _field("linear warm-up from 0 to lr over this many epochs", ge=0)
    clipnorm: float | None = _field("gradient clipping by norm; null: no clipping", gt=0)
    patience: Count | None = _field("early stopping on val_loss after this many epochs without improvement; null: off")
    class_weight: ClassWeight = _field("none, or balanced: weight classes by n / (classes * count)")
    min_steps: int = _field("at least this many optimizer steps in all (a small set is repeated within each epoch); "
                            "0: epochs alone set the budget", ge=0)
    label_smoothing: float = _field("share of each label's probability spread evenly over all classes in the training "
                                    "loss (the validation loss that picks the best epoch is smoothed too); 0: off",
                                    ge=0, lt=1)

    @model_validator(mode="after")
    def _warmup(self):
        if self.warmup_epochs >= self.epochs:
            raise ParamError(f"{self.KEY}.warmup_epochs", f"{self.warmup_epochs}; must be >= 0 and below "
                             f"{self.KEY}.epochs ({self.epochs})")
        return self

    KEY: ClassVar[str] = "fit"  # the section's name in params.yaml, for messages


class Pretrain(Fit):
    KEY: ClassVar[str] = "pretrain"
    lr: float = _field("Adam's learning rate", gt=0)
    method: Literal["supervised", "autoencoder"] = _field(
        "supervised (the labelled source task) or autoencoder (learn from unlabelled images, no labels)")
    data: Path = _field("what pretrain reads: supervised, labelled {train,test}/<class>/ folders of images, or "
                        "{train,test}.npz archives (graft.data.packed; ingest writes the default source task so, to "
                        "paths.source); autoencoder, a folder of unlabelled images (given paths.target, its test/ and "
                        "valid/ are left out)")
    valid_fraction: Fraction = _field("share of the source training images held out for validation")

    @model_validator(mode="after")
    def _smoothing(self):
        if self.method == "autoencoder" and self.label_smoothing:
            raise ParamError("pretrain.label_smoothing", f"{self.label_smoothing}; the autoencoder has no labels to "
                             "smooth: set it to 0")
        return self


class Head(Fit):
    KEY: ClassVar[str] = "head"
    lr: float = _field("Adam's learning rate", gt=0)
    pooling: Literal["avg", "flatten"] = _field("avg (global average) or flatten, over the base's feature maps")
    dense: tuple[Count, ...] = _field("hidden layers' units, e.g. [128]; [] is a linear classifier")
    activation: Literal["relu", "leaky_relu", "elu", "gelu", "swish", "selu", "tanh"] = _field("hidden layers' activation")
    initializer: Literal["auto", "he_normal", "he_uniform", "lecun_normal", "glorot_uniform"] = _field(
        "auto: He for ReLU variants, LeCun for SELU, Glorot for tanh")
    batchnorm: bool = _field("BatchNorm after each hidden layer")
    dropout: float = _field("before each Dense layer of the head", ge=0, lt=1)
    cache_features: bool = _field("run the frozen base once (stage features); off when augmenting")


class Finetune(Fit):
    KEY: ClassVar[str] = "finetune"
    lr: float | None = _field("Adam's learning rate; null: head.lr * finetune.lr_factor", gt=0)
    lr_factor: Fraction = _field("fine-tuning rate as a share of head.lr (it needs a lower rate)")
    unfreeze: Annotated[int, Field(ge=0)] | Annotated[float, Field(gt=0, le=1)] | str = _field(
        "what to unfreeze: a block name prefix (block3), a number of top layers, or a fraction of the base (0.5)")


class Advisor(Section):
    small_per_class: Count = _field("fewer labelled training images than this in any class: a small target set")
    similar_gain: float = _field("similar domain: the source's features remove at least this share of a random "
                                 "base's linear-probe errors", ge=-1, le=1)
    scratch_below_gain: float | None = _field("below this probe gain, do not transfer (ship the scratch model); "
                                              "null: never", ge=-1, le=1)
    min_error_gap: int = _field("do not transfer only with at least this many more probe errors than the random base's",
                                ge=0)
    top_half: float = _field("small and different: fine-tune this fraction of the base's weight layers", gt=0, le=1)
    probe_folds: int = _field("cross-validation folds of the linear probe", ge=2)
    probe_c: float = _field("inverse L2 strength of the probe's logistic regression (scikit-learn's C), on "
                            "standardised features", gt=0)
    probe_max_iter: int = _field("at most this many solver iterations per probe fit (lbfgs); not converged: an error",
                                 ge=1)

    @model_validator(mode="after")
    def _order(self):
        if self.scratch_below_gain is not None and self.scratch_below_gain > self.similar_gain:
            raise ParamError("advisor.scratch_below_gain", f"{self.scratch_below_gain}; must be at most "
                             f"advisor.similar_gain ({self.similar_gain}): below it the source's features count as "
                             "worse than a random network's (null: never advise training from scratch)")
        return self


class Augment(Section):
    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = _field("random flips")
    rotation: float = _field("random rotation, a fraction of a full turn", ge=0, lt=1)
    zoom: float = _field("random zoom, a fraction", ge=0, lt=1)
    translation: float = _field("random shift, a fraction of height and width", ge=0, lt=1)

    @property
    def enabled(self) -> bool:
        return self.flip != "none" or any((self.rotation, self.zoom, self.translation))


class Scratch(Section):
    enabled: bool = _field("train the same network from random weights, to measure transfer's lift")


class Evaluate(Section):
    confidence: float = _field("confidence level of evaluate's Wilson intervals of the test accuracies (0.95: 95%); the "
                               "transfer lift is significant when the exact McNemar test's p-value is below "
                               "1 - confidence", gt=0.5, lt=1)
    tta: Literal["none", "horizontal_flip"] = _field(
        "test-time augmentation of every scored model (head, fine-tuned, scratch) and of the exported one: none, or "
        "horizontal_flip (the mean of the probabilities of the image and its mirror image, inside model.onnx too); "
        "only for images whose mirror image is the same class (not digits or text)")


class Gate(Section):
    min_accuracy: float = _field("test accuracy the model needs, a fraction (0.99, not 99)", ge=0, le=1)
    min_class_recall: float = _field("recall every class needs, a fraction", ge=0, le=1)
    max_regression: float = _field("accuracy (a fraction) it may lose against the model in GTO's prod stage", ge=0, le=1)


class Export(Section):
    opset: int = _field("ONNX opset", ge=13)
    tolerance: float = _field("max |onnxruntime - keras| probability on the test split, batch 1 and 32", gt=0)
    quantize: bool = _field("also make model.int8.onnx (static QDQ, calibrated on train images)")
    int8_max_drop: float = _field("ship int8 only within this many accuracy points of the float model", ge=0)
    calibration_images: Count = _field("train images that calibrate the int8 activation ranges")
    allow_unblessed: bool = _field("true: publish a model the gate refused")


class Card(Section):
    license: str = _field("the model's license in the model card's front matter: a Hugging Face license id "
                          "(apache-2.0, mit, cc-by-4.0, other, ...); yours to choose for your data", min_length=1)
    datasets: tuple[str, ...] = _field("Hugging Face dataset ids of the training data, for the front matter; [] for "
                                       "images of your own that are not on the Hub")
    tags: tuple[str, ...] = _field("the front matter's tags: what a model hub lists the model under")
