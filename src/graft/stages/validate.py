"""Stage ``validate``: the data gate over the target folder (Great Expectations)."""

from __future__ import annotations

from graft import artifacts
from graft.data.annotate import Checks
from graft.data.validate import describe, validate


def run(params) -> None:
    summary = validate(target_dir=params.paths.target, checks=Checks.of(params),
                       out_dir=artifacts.VALIDATION.path(params.paths))
    print(describe(summary))
