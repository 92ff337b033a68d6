"""graft: transfer learning for small labelled image sets, as one reproducible pipeline.

Importing graft switches off the telemetry of every tool it drives (the variables in
``environment.env``, set as defaults a user's environment may override). That is the package's
only import-time side effect; it imports none of the tools, nor TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"


def _tool_defaults() -> dict[str, str]:
    lines = Path(__file__).with_name("environment.env").read_text().splitlines()
    pairs = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    for name, value in pairs.items():
        os.environ.setdefault(name, value)
    return pairs


TOOL_DEFAULTS = _tool_defaults()
