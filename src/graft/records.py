"""What the JSON records of the stages hold: one pydantic model each, written and read through
graft.artifacts, so a writer and its readers cannot drift."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """A JSON file one stage writes and others read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict:
        """What the writer gave: a field it left out stays out, one it set to None is null."""
        return self.model_dump(mode="json", exclude_unset=True)


class IngestRecord(Record):
    origin: str  # where Fashion-MNIST was read from
    source: dict[str, dict[str, int]]  # split -> class -> images written
    target: dict[str, Any]  # the same for the default target, or {"folder": ...} for the user's own


class PretrainRecord(Record):
    base: str
    weights: str
    base_params: int
    method: str | None = None  # "autoencoder"; absent for the supervised source task
    source_classes: list[str] | None = None
    train_images: int | None = None
    valid_images: int | None = None
    best_epoch: int | None = None
    valid_loss: float | None = None
    valid_accuracy: float | None = None
    test_images: int | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    unlabelled_images: int | None = None
    unlabelled_from: str | None = None
    valid_reconstruction_mse: float | None = None


class FeaturesRecord(Record):
    cached: bool
    reason: str | None = None  # why not cached
    key: str | None = None  # what the features belong to (source model, split, pooling)
    base: str | None = None
    pooling: str | None = None
    shape: list[int] | None = None
    train: dict[str, int] | None = None
    valid: dict[str, int] | None = None


class PlanRecord(Record):
    strategy: str
    unfreeze: int | float | str | None
    label: str


class AdviceRecord(Record):
    strategy: str  # params.yaml's strategy (auto, or an explicit one)
    plan: PlanRecord  # what finetune follows
    advised: PlanRecord  # what the advisor chose
    advised_choice: str
    scenario: dict[str, str]  # size, domain
    reason: str
    measurements: dict[str, Any]
    thresholds: dict[str, Any]


class PhaseRecord(Record):
    """A training phase: what it trained, and its fit (graft.train.fit.FitResult.record) when it ran."""

    epochs_run: int
    trainable_params: int
    best_epoch: int | None = None
    valid_loss: float | None = None
    valid_accuracy: float | None = None
    resumed_from_epoch: int | None = None


class HeadRecord(PhaseRecord):
    strategy: str | None = None  # as_classifier: nothing trained
    trained: bool | None = None
    reason: str | None = None
    cached_features: bool | None = None


class FinetuneRecord(PhaseRecord):
    strategy: str
    fine_tuned: bool
    unfrozen_layers: list[str]
    reason: str | None = None  # why nothing was fine-tuned
    unfreeze: int | float | str | None = None
    lr: float | None = None


class ClassScores(Record):
    precision: float
    recall: float
    f1: float
    support: int


class Interval(Record):
    """A confidence interval of a proportion (graft.evaluate.metrics.wilson_interval)."""

    low: float
    high: float
    confidence: float  # 0.95: a 95% interval
    method: str  # "wilson"

    def span(self, fmt: str) -> str:
        """"95% interval 99.49%-99.92%" with ``fmt`` ".2%" (every reader spells an interval this way)."""
        return f"{self.confidence:.0%} interval {self.low:{fmt}}-{self.high:{fmt}}"


class Scores(Record):
    """One model on the test split (graft.evaluate.metrics.report)."""

    accuracy: float
    loss: float
    images: int
    errors: int
    macro_f1: float
    ece: float
    per_class: dict[str, ClassScores]
    roc_auc: float | None = None  # two classes
    top_5_accuracy: float | None = None  # more than five classes
    accuracy_interval: Interval | None = None  # evaluate's models (evaluate.confidence)


class ScratchRecord(Record):
    enabled: bool
    epochs: int | None = None
    collapsed_to: str | None = None  # the one class a collapsed baseline predicts
    test: Scores | None = None  # the baseline on the test split

    @property
    def accuracy(self) -> float | None:
        return self.test.accuracy if self.test else None


class MetricsRecord(Record):
    """metrics.json: the models alone (the lift is lift.json), so every key is a model."""

    head: Scores
    finetuned: Scores


class McNemarRecord(Record):
    """The exact McNemar test of two models on the same test images (graft.evaluate.lift.mcnemar):
    only the images exactly one of them gets right say which is better."""

    transfer_only: int  # images the transferred model gets right and the scratch baseline wrong
    scratch_only: int  # the other way round
    p_value: float  # two-sided, exact (binomial with p = 1/2 on the discordant images)
    alpha: float  # 1 - evaluate.confidence
    significant: bool  # p_value < alpha


class LiftRecord(Record):
    """Transfer's gain over the scratch baseline on the same test images, or why there is none."""

    scratch_accuracy: float | None = None
    scratch_interval: Interval | None = None
    mcnemar: McNemarRecord | None = None  # is the gain more than chance on these test images?
    accuracy_points: float | None = None
    error_reduction: float | None = None  # scratch's errors / transfer's; None when transfer made none
    unavailable: str | None = None  # why no lift is reported
    not_transferred: bool = False  # the shipped model is the scratch baseline itself


class GateRecord(Record):
    blessed: bool
    reasons: list[str]
    checks: dict[str, dict[str, Any]]
    consider: list[str] = []  # on a refusal: what was measured, and the thresholds to look at
    test_data: str | None = None  # digest of the test images it was decided on (graft.provenance.tree_digest)


class BlessedRecord(Record):
    """The model the gate compares with: the registry's version in prod (graft.registry.prod), read
    from its own commit."""

    accuracy: float | None = None
    per_class: dict[str, ClassScores] | None = None
    test_data: str | None = None  # digest of the test images it was scored on (graft.provenance.tree_digest)
    git_revision: str | None = None  # the commit its version tags
    version: str | None = None  # its GTO version (v0.0.1)


class ExportRecord(Record):
    model_version: int | None = None  # model.onnx's model_version (graft.export.onnx.model_version)
    parity: dict[str, Any]
    int8: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None


class ValidationSummary(Record):
    success: bool
    target: str
    files: int
    decodable: int
    hidden_skipped: int
    quarantined: int
    class_counts: dict[str, int]
    critical: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    quarantine_report: str
    data_docs: str


class Labels(Record):
    classes: list[str]
    input: dict[str, Any]
    output: str
