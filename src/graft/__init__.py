"""graft: transfer learning for small labelled image sets, as one reproducible pipeline.

Importing graft switches off the telemetry of every tool it drives. This module sets
only environment variables, so it is safe to import before DVC, Prefect or Great
Expectations (and it imports none of them, nor TensorFlow).
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

TELEMETRY_OFF = {
    "DVC_NO_ANALYTICS": "1",
    "ITERATIVE_DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}

for _name, _value in TELEMETRY_OFF.items():
    os.environ.setdefault(_name, _value)
