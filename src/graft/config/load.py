"""Reading ``params.yaml`` into :class:`Params`, and saying in one line what is wrong with it."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from graft.config import outputs
from graft.config.params import Params
from graft.config.sections import ParamError
from graft.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")
SCHEMA_DOC = "docs/params.schema.json"


class _Loader(yaml.SafeLoader):
    """YAML 1.2's floats: ``1e-4`` is a number, as DVC (ruamel) reads it, not PyYAML 1.1's string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)


def load(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and check ``params.yaml``; raise :class:`ConfigError` naming the bad key and the fix.
    Relative paths are the project's: the params file's folder, where DVC runs every stage."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such params file; run from the project root or pass --params")
    try:
        raw = read_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    params = parse(raw, where=str(path))
    try:
        outputs.check(params, path.parent)  # the project is the params file's folder
    except ParamError as err:
        raise ConfigError(f"{path}: {err}") from None
    return params


def parse(raw: Any, *, where: str) -> Params:
    """Check a mapping (params.yaml's content) against the schema; ``where`` names it in errors."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of params sections, got {type(raw).__name__}; "
                          f"see {SCHEMA_DOC}")
    try:
        # JSON mode: strict types, with YAML lists as tuples and strings as paths
        return Params.model_validate_json(json.dumps(raw, default=str))
    except ValidationError as err:
        by_key: dict[str, list[dict]] = {}
        for problem in err.errors():
            by_key.setdefault(_key(problem["loc"])[0], []).append(problem)
        (key, problems), *others = by_key.items()
        more = f" (and {len(others)} more key(s) to fix: {', '.join(k for k, _ in others)})" if others else ""
        raise ConfigError(f"{where}: {explain(problems)}{more}") from None


def with_changes(params: Params, changes: dict) -> Params:
    """``params`` with ``changes`` (nested sections, as params.yaml has them) merged in and checked
    again, as if params.yaml said so."""
    def merge(base: dict, change: dict) -> dict:
        return {**base, **{k: merge(base.get(k, {}), v) if isinstance(v, dict) else v for k, v in change.items()}}

    return parse(merge(params.model_dump(mode="json", by_alias=True), changes), where="params (with changes)")


def explain(problems: list[dict]) -> str:
    """The pydantic errors of one key (several for a value that fits no branch of a union) as
    ``key: what is wrong; what to do``."""
    problem = problems[0]
    error = problem.get("ctx", {}).get("error")
    if isinstance(error, ParamError):
        return str(error)
    key, field = _key(problem["loc"])
    kind, value = problem["type"], problem.get("input")
    hint = f" ({field.description})" if field is not None and field.description else ""
    if len(problems) > 1:
        return f"{key}: {value!r} is not a value it takes{hint}"
    if kind == "missing":
        return f"{key}: missing; every key is required (no defaults in code): add it{hint}, see {SCHEMA_DOC}"
    if kind == "extra_forbidden":
        section, _, name = key.rpartition(".")
        return f"{section or 'top level'}: unknown key {name!r}; known keys: {', '.join(_known(section))}"
    if kind == "literal_error":
        return f"{key}: {value!r}; use one of {problem['ctx']['expected']}{hint}"
    if kind.endswith("_type") or kind in ("finite_number", "model_type", "dict_type"):
        expected = kind.removesuffix("_type").replace("finite_number", "finite number").replace("model", "mapping")
        return f"{key}: expected {expected}, got {value!r}{hint}"
    return f"{key}: {value!r}: {problem['msg'][0].lower()}{problem['msg'][1:]}{hint}"


def _key(loc: tuple) -> tuple[str, Any]:
    """The dotted params key of an error location (union branch tags dropped) and its field."""
    parts, model, field, mapping = [], Params, None, False
    for part in loc:
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
            continue
        if mapping:  # a key of a mapping field (timeouts.<stage>)
            parts.append(str(part))
            mapping = False
            continue
        fields = {f.alias or name: f for name, f in model.model_fields.items()} if model is not None else {}
        if part not in fields:
            if not parts or model is not None:
                parts.append(str(part))  # an unknown key
            break
        field = fields[part]
        parts.append(part)
        annotation = field.annotation
        mapping = typing.get_origin(annotation) is dict
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return ".".join(parts), field


def _known(section: str) -> list[str]:
    model = Params
    for part in filter(None, section.split(".")):
        model = {f.alias or n: f for n, f in model.model_fields.items()}[part].annotation
    return sorted(f.alias or n for n, f in model.model_fields.items())


def json_schema() -> dict:
    """The JSON Schema of params.yaml (published as docs/params.schema.json, for editors)."""
    schema = Params.model_json_schema(by_alias=True)
    schema["title"] = "graft params.yaml"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
