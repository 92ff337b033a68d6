"""Every error a user can fix, in one place.

A :class:`GraftError` means bad input: a param, a file, a folder, a model that does not pass a
check. Its message is one line (or a first line and the files it names) that says what is wrong
and how to fix it; ``graft <command>`` prints it without a traceback and exits 1. Any other
exception is a bug in graft and keeps its traceback.
"""

from __future__ import annotations

MAX_NAMED = 10  # entries a message names; the rest are counted (the files graft writes name all)


def listing(entries: list[str]) -> str:
    """The indented lines of a message that names files: the first :data:`MAX_NAMED`, then how
    many more."""
    lines = [f"    {entry}" for entry in entries[:MAX_NAMED]]
    if len(entries) > MAX_NAMED:
        lines.append(f"    ... and {len(entries) - MAX_NAMED} more")
    return "\n".join(lines)


class GraftError(Exception):
    """Something the user can fix; the message names the file or parameter and the fix."""


class ConfigError(GraftError):
    """params.yaml is missing, malformed, or has a value graft cannot use."""


class DistributeError(ConfigError):
    """The ``distribute`` param cannot be honoured in this environment (TF_CONFIG)."""


class MissingInput(GraftError):
    """A file a stage reads is not there, or belongs to other params: an earlier stage has to run."""


class DataNotFound(GraftError):
    """No copy of Fashion-MNIST could be found or fetched."""


class TargetFolderError(GraftError):
    """The user's target folder is missing, or has none of the configured classes."""


class ValidationFailed(GraftError):
    """A critical data check failed; the message names the check and the files."""


class BadImage(GraftError):
    """An image file graft may not or cannot decode; the message names the file and why."""


class SplitError(GraftError):
    """The params leave a class without images in a split."""


class NoUnlabelledImages(GraftError):
    """``pretrain.method: autoencoder`` found no images it may use."""


class WeightsError(GraftError):
    """``base.weights`` cannot be used: missing, the wrong digest, the wrong architecture, not downloadable."""


class ProbeError(GraftError):
    """The train split is too small for the advisor to measure the task."""


class ModelMismatch(GraftError):
    """A model does not fit what the params ask of it (``finetune.unfreeze`` names no layer, ...)."""


class PoolTooSmall(GraftError):
    """A requested training-set size needs more labelled images than the pool holds."""


class GateRefused(GraftError):
    """The model is not blessed and the user did not override the release gate."""


class RegistryError(GraftError):
    """The model registry (GTO tags) cannot register this run, or its prod model's records cannot be
    read (the gate refuses to guess)."""


class ParityError(GraftError):
    """onnxruntime and Keras disagree beyond the tolerance; nothing was published."""


class QuantizationUnavailable(GraftError):
    """onnxruntime's quantizer cannot make an int8 model of this graph; the float model ships alone."""


class ModelFileError(GraftError):
    """A file given as an ONNX model is not one graft can score with."""


class PredictError(GraftError):
    """``graft predict`` was given nothing to score, or an option it cannot honour."""


class PipelineBusy(GraftError):
    """Another pipeline run holds the project; this trigger gave up without touching it."""


class StageFailed(GraftError):
    """``dvc repro`` of one stage exited non-zero; the message carries the end of its output."""

    def __init__(self, stage: str, returncode: int, output: str):
        super().__init__(f"dvc repro {stage} failed (exit {returncode}):\n{output[-4000:]}")
        self.stage, self.returncode, self.output = stage, returncode, output


class StageTimeout(StageFailed):
    """A stage ran past its time limit (``timeouts.<stage>``); its whole process group was killed."""

    def __init__(self, stage: str, seconds: float, output: str):
        GraftError.__init__(self, f"stage {stage} ran longer than timeouts.{stage} ({seconds:.0f} s) and was stopped: "
                                  f"its processes were killed and the pipeline lock released; raise timeouts.{stage} "
                                  f"in params.yaml if it needs longer\n{output[-2000:]}")
        self.stage, self.returncode, self.output = stage, -9, output


class ExtraMissing(GraftError):
    """A command needs the packages of an extra (``graft[pipeline]``) that this install lacks."""
