"""``params.yaml``, the only home of graft's defaults: its schema and its one loader.

Every stage, the Prefect flows and the tests read parameters through :func:`load`. Unknown,
missing or misspelt keys, wrong types and impossible values fail here, naming the key and the
fix, before any stage does work. The sections' models are in :mod:`graft.config.sections`.
"""

from graft.config.load import DEFAULT_PARAMS, json_schema, load, parse, read_yaml, with_changes
from graft.config.params import Params, stage_names
from graft.errors import ConfigError

__all__ = ["DEFAULT_PARAMS", "ConfigError", "Params", "json_schema", "load", "parse", "read_yaml", "stage_names", "with_changes"]
