"""The stage contract: every file a stage writes (and a later stage, the summary, the model card
or the flows read), where it lives, and for a JSON record, its model (graft.records).

An :class:`Artifact` is a folder from ``params.yaml``'s ``paths`` and a file name in it (or the
folder itself). ``dvc.yaml`` spells each one as ``${paths.<folder>}/<name>`` in the ``outs``,
``metrics`` or ``plots`` of the stage that writes it; a test checks that the two agree. A JSON
record is written and read through its pydantic model, so a writer and its readers cannot drift
and a record from another version or a truncated file is an error that says which stage to run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import ValidationError

from graft.errors import MissingInput
from graft.files import write_json
from graft.records import (
    AdviceRecord,
    ExportRecord,
    FeaturesRecord,
    FinetuneRecord,
    GateRecord,
    HeadRecord,
    IngestRecord,
    Labels,
    LiftRecord,
    MetricsRecord,
    PretrainRecord,
    Record,
    ScratchRecord,
    ValidationSummary,
)

R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Artifact(Generic[R]):
    stage: str  # the DVC stage that writes it
    folder: str  # the params.yaml ``paths`` key it lives under
    name: str = ""  # the file name inside that folder; "": the path itself
    record: type[R] | None = None  # the content of a JSON record

    def path(self, paths) -> Path:
        base = Path(getattr(paths, self.folder))
        return base / self.name if self.name else base

    @property
    def dvc(self) -> str:
        """How dvc.yaml spells it."""
        return f"${{paths.{self.folder}}}" + (f"/{self.name}" if self.name else "")

    def require(self, paths) -> Path:
        """The path, which must exist: else the stage that writes it has to run first."""
        path = self.path(paths)
        if not path.exists():
            raise MissingInput(f"{path}: missing; run `graft {self.stage}` (or `dvc repro`) first")
        return path

    def read(self, paths) -> R:
        path = self.require(paths)
        try:
            return self.record.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError) as err:
            first = err.errors()[0] if isinstance(err, ValidationError) else {"msg": str(err), "loc": ()}
            where = ".".join(map(str, first["loc"]))
            raise MissingInput(f"{path}: not a record graft {self.stage} writes ({where}: {first['msg']}); "
                               f"run `graft {self.stage}` (or `dvc repro`) again") from None

    def read_or_none(self, paths) -> R | None:
        """The record, or None when its stage has not run (the summary shows what there is)."""
        return self.read(paths) if self.path(paths).is_file() else None

    def write(self, paths, record: R) -> Path:
        path = self.path(paths)
        write_json(path, record.to_json())
        return path


SPLITS = ("train", "valid", "test")  # the split's folders, and the given folders of a user's target


# --- the artifacts, stage by stage ------------------------------------------------------------

RAW = Artifact("ingest", "raw")
INGEST = Artifact("ingest", "metrics", "ingest.json", IngestRecord)

VALIDATION = Artifact("validate", "validation")
MANIFEST = Artifact("validate", "validation", "manifest.csv")
QUARANTINE = Artifact("validate", "validation", "quarantine.csv")
VALIDATION_SUMMARY = Artifact("validate", "validation", "summary.json", ValidationSummary)
GX = Artifact("validate", "validation", "gx")

SPLIT = Artifact("split", "split")
SPLIT_TABLE = Artifact("split", "split", "split.csv")

SOURCE_MODEL = Artifact("pretrain", "source_model")
PRETRAIN = Artifact("pretrain", "metrics", "pretrain.json", PretrainRecord)
PRETRAIN_LIVE = Artifact("pretrain", "plots", "live/pretrain/metrics.json")  # DVCLive's (graft.train.history)
PRETRAIN_CURVES = Artifact("pretrain", "plots", "live/pretrain/plots/metrics")

FEATURES = Artifact("features", "features")
FEATURES_RECORD = Artifact("features", "features", "features.json", FeaturesRecord)

ADVICE = Artifact("advise", "metrics", "advice.json", AdviceRecord)

HEAD_MODEL = Artifact("train_head", "head_model")
HEAD = Artifact("train_head", "metrics", "head.json", HeadRecord)
HEAD_LIVE = Artifact("train_head", "plots", "live/head/metrics.json")
HEAD_CURVES = Artifact("train_head", "plots", "live/head/plots/metrics")

FINETUNED_MODEL = Artifact("finetune", "finetuned_model")
FINETUNE = Artifact("finetune", "metrics", "finetune.json", FinetuneRecord)
FINETUNE_LIVE = Artifact("finetune", "plots", "live/finetune/metrics.json")
FINETUNE_CURVES = Artifact("finetune", "plots", "live/finetune/plots/metrics")

SCRATCH = Artifact("scratch", "scratch_model")
SCRATCH_MODEL = Artifact("scratch", "scratch_model", "model.keras")
SCRATCH_RECORD = Artifact("scratch", "metrics", "scratch.json", ScratchRecord)
SCRATCH_LIVE = Artifact("scratch", "plots", "live/scratch/metrics.json")
SCRATCH_CURVES = Artifact("scratch", "plots", "live/scratch/plots/metrics")

METRICS = Artifact("evaluate", "metrics", "metrics.json", MetricsRecord)
LIFT = Artifact("evaluate", "metrics", "lift.json", LiftRecord)
CONFUSION = Artifact("evaluate", "plots", "confusion.csv")
WORST_ERRORS = Artifact("evaluate", "plots", "worst_errors.csv")
CONFUSION_PNG = Artifact("evaluate", "plots", "confusion.png")
LEARNING_CURVES = Artifact("evaluate", "plots", "learning_curves.png")
SAMPLES = Artifact("evaluate", "plots", "samples.png")
RELIABILITY = Artifact("evaluate", "plots", "reliability.png")
PICTURES = (CONFUSION_PNG, LEARNING_CURVES, SAMPLES, RELIABILITY)

GATE = Artifact("export", "metrics", "gate.json", GateRecord)
EXPORT = Artifact("export", "export")
MODEL_ONNX = Artifact("export", "export", "model.onnx")
MODEL_INT8 = Artifact("export", "export", "model.int8.onnx")
LABELS = Artifact("export", "export", "labels.json", Labels)
MODEL_CARD = Artifact("export", "export", "model_card.md")
EXPORT_RECORD = Artifact("export", "export", "export.json", ExportRecord)
REPORT = Artifact("export", "report")  # the run's report, one self-contained HTML page (graft.evaluate.page)
MODEL_NAME = "graft-classifier"  # the published model's name: dvc.yaml's artifacts entry, the model card's
# model-index, and the GTO artifact graft register tags (graft.registry)



def live_dir(live: Artifact, paths) -> Path:
    """A phase's DVCLive folder, from its ``*_LIVE`` summary (dvc.yaml declares the summary as the
    stage's metrics and the step tables as its plots, not the folder, which holds both)."""
    return live.path(paths).parent


ALL = tuple(value for value in dict(globals()).values() if isinstance(value, Artifact))
