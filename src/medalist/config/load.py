"""Load a config: YAML, `extends:` inheritance, `section.key=value` overrides, typed validation.

Every problem becomes a one-line UserError that names the file and the key, and for a
misspelt key, the nearest valid one.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from medalist.config.schema import Config
from medalist.errors import UserError


def project_root_for(config_path: Path) -> Path:
    """The project of a config: the parent of `configs/` or of `runs/<name>/`, else its folder."""
    folder = config_path.resolve().parent
    if folder.name == "configs":
        return folder.parent
    if folder.parent.name == "runs":
        return folder.parent.parent
    return folder


def _read_yaml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise UserError(
            f"config {path} is a folder, not a config file: give the YAML file itself "
            "(configs/baseline.yaml?)"
        )
    if not path.is_file():
        raise UserError(f"config {path} not found: check the path (configs/baseline.yaml?)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UserError(
            f"config {path}{where}: not valid YAML ({exc.__class__.__name__})"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"config {path}: the top level must be a mapping of sections")
    return data


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `update` merged in, section by section."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise UserError(f"config {path}: `extends` makes a loop ({' -> '.join(map(str, seen))})")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise UserError(f"config {path}: `extends` takes a file name, got {parent!r}")
    return deep_merge(_load_raw(path.parent / parent, (*seen, path)), data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=3e-4` -> (["train", "lr"], 0.0003); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or "." not in key:
        raise UserError(
            f"override {text!r}: write it as section.key=value, for example train.lr=3e-4"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            child = node.setdefault(k, {})
            if not isinstance(child, dict):
                raise UserError(f"override {text!r}: {k} is not a section")
            node = child
        node[keys[-1]] = value
    return out


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return []
    return list(model.model_fields)


def _describe(error: Mapping[str, Any], source: str) -> str:
    loc = tuple(p for p in error["loc"] if not str(p).startswith("function-after"))
    key = ".".join(str(p) for p in loc) or "(top level)"
    if not loc and isinstance((error.get("ctx") or {}).get("error"), ValueError):
        return f"{source}: {error['ctx']['error']}"  # a rule across sections names its keys
    if error["type"] == "extra_forbidden":
        valid = _fields_at(loc)
        near = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        section = ".".join(str(p) for p in loc[:-1])
        hint = (
            f"did you mean {section + '.' if section else ''}{near[0]}?"
            if near
            else (f"valid keys here: {', '.join(valid)}")
        )
        return f"{source}: unknown key {key}: {hint}"
    if not loc:  # a check across sections says which keys
        return f"{source}: {error['msg'].removeprefix('Value error, ')}"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict) else "a mapping"
    return f"{source}: {key} = {shown}: {error['msg'].lower()}"


def validate_config(data: Mapping[str, Any], source: str = "config") -> Config:
    """Validate raw data against the schema; errors become UserError naming the key."""
    try:
        return Config.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise UserError(_describe(first, source) + suffix) from None


def load_config(
    path: str | Path, overrides: Iterable[str] = (), root: Path | None = None
) -> Config:
    """Read, inherit, override and validate a config file."""
    path = Path(path)
    data = apply_overrides(_load_raw(path), list(overrides))
    cfg = validate_config(data, source=f"config {path}")
    cfg._root = (root or project_root_for(path)).resolve()
    cfg._source = path.resolve()
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data (what is saved with a run)."""
    data = cfg.model_dump(mode="json")
    data.pop("extends", None)
    return data


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} -> {"train.lr": 1}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
