"""One thin module per DVC stage, named as the stage in dvc.yaml: each ``run(params)`` loads its
inputs, calls keyword-only cores from the area packages, and writes the stage's records.
``graft <stage>`` calls it; these modules are the CLI's list of stages (a test checks them
against dvc.yaml), and each one's docstring is its ``graft <stage> --help``. Listing them imports
none of them (nor TensorFlow)."""

from __future__ import annotations

import ast
import pkgutil
import re
from pathlib import Path

HERE = Path(__file__).parent


def names() -> list[str]:
    """The pipeline's stages, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]))


def description(name: str) -> str:
    """What stage ``name`` does: the first paragraph of its module's docstring, read without importing it."""
    doc = ast.get_docstring(ast.parse((HERE / f"{name}.py").read_text())) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return re.sub(rf"^Stage ``{name}``: ", "", first)
