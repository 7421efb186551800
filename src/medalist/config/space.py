"""The search space of `medalist tune`: each `tune.space` key checked against the schema, and
each spec turned into an Optuna distribution.

```yaml
tune:
  space:
    train.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
    train.batch_size: {type: int, low: 16, high: 64, step: 16}
    model.backbone: {type: categorical, choices: [resnet18, efficientnet_b0]}
```

Optuna is imported inside the functions, so loading a config never pays for it.
"""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from medalist.config.load import config_to_dict
from medalist.config.schema import Config
from medalist.errors import UserError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

SPEC_FIELDS = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}
# Every trial must be scored on the same folds with the same metric, or the values don't compare.
FIXED_SECTIONS = ("competition", "cv", "tune")
EXAMPLE = "train.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}"


def config_keys() -> list[str]:
    """Every `section.key` of the schema."""
    keys = []
    for section, field in Config.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(f"{section}.{name}" for name in ann.model_fields)
    return keys


def parse_space(cfg: Config, source: str = "config") -> dict[str, BaseDistribution]:
    """`cfg.tune.space` as Optuna distributions; a UserError names the first bad key or spec."""
    space = cfg.tune.space
    if not space:
        raise UserError(f"{source}: tune.space is empty: add the keys to search, e.g. {EXAMPLE}")
    keys = config_keys()
    base = config_to_dict(cfg)
    out = {}
    for key, spec in space.items():
        where = f"{source}: tune.space {key}"
        _check_key(key, keys, where)
        dist = _distribution(spec, where)
        for label, value in _edge_values(dist):
            _check_value(base, key, label, value, where)
        out[key] = dist
    return out


def grid_of(space: dict[str, BaseDistribution], source: str = "config") -> dict[str, list[Any]]:
    """The grid GridSampler walks: categorical choices, and every step of an int or float range."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    grid: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif isinstance(dist, FloatDistribution) and dist.step is None:
            raise UserError(
                f"{source}: tune.sampler = grid: tune.space {key} is continuous; give it a step, "
                "or list the values as {type: categorical, choices: [...]}"
            )
        else:
            n = int(math.floor((dist.high - dist.low) / dist.step + 1e-9)) + 1
            values = [float(f"{dist.low + i * dist.step:.12g}") for i in range(n)]
            grid[key] = values if isinstance(dist, FloatDistribution) else [int(v) for v in values]
    return grid


def _check_key(key: str, keys: list[str], where: str) -> None:
    if key in keys:
        section = key.split(".")[0]
        if section in FIXED_SECTIONS:
            raise UserError(
                f"{where}: the search can't change {section}.*: every trial must be scored on "
                "the same folds with the same metric; search model, data or train keys"
            )
        return
    sections = {k.split(".")[0] for k in keys}
    if key in sections:
        raise UserError(f"{where}: {key} is a section; name one of its keys, e.g. {key}.<key>")
    near = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if not near and "." not in key:
        near = [k for k in keys if k.endswith("." + key)]
    hint = f"did you mean {near[0]}?" if near else "write keys as section.key, e.g. train.lr"
    raise UserError(f"{where}: no such config key: {hint}")


def _distribution(spec: dict[str, Any], where: str) -> BaseDistribution:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    kind = spec.get("type")
    if kind not in SPEC_FIELDS:
        raise UserError(
            f"{where}: type = {kind!r}: use float, int or categorical, e.g. {{type: float, "
            "low: 1.0e-5, high: 1.0e-2, log: true}"
        )
    allowed = SPEC_FIELDS[kind]
    for name in spec:
        if name not in allowed:
            near = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.5)
            hint = f"did you mean {near[0]}?" if near else f"a {kind} takes {', '.join(allowed)}"
            raise UserError(f"{where}: unknown field {name!r}: {hint}")
    try:
        if kind == "categorical":
            return CategoricalDistribution(_choices(spec, where))
        number = _as_float if kind == "float" else _as_int
        low, high = (number(spec, name, where, required=True) for name in ("low", "high"))
        step = number(spec, "step", where, required=False)
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise UserError(f"{where}: log = {log!r}: write true or false")
        if kind == "float":
            return FloatDistribution(low, high, log=log, step=step)
        return IntDistribution(low, high, log=log, step=1 if step is None else step)
    except ValueError as exc:  # optuna's own checks: low <= high, log needs low > 0, ...
        raise UserError(f"{where}: {exc}") from None


def _as_float(spec: dict[str, Any], name: str, where: str, *, required: bool) -> float | None:
    value = spec.get(name)
    if value is None:
        if required:
            raise UserError(f"{where}: needs {name}, e.g. {EXAMPLE}")
        return None
    try:
        # YAML reads 1e-5 (no dot) as a string; accept what a person would call a number.
        out = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out):
        raise UserError(f"{where}: {name} = {value!r}: write a number")
    return out


def _as_int(spec: dict[str, Any], name: str, where: str, *, required: bool) -> int | None:
    out = _as_float(spec, name, where, required=required)
    if out is None:
        return None
    if out != int(out):
        raise UserError(f"{where}: {name} = {spec[name]!r}: an int range takes whole numbers")
    return int(out)


def _choices(spec: dict[str, Any], where: str) -> tuple[Any, ...]:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise UserError(f"{where}: needs choices, a non-empty list, e.g. choices: [32, 64]")
    for c in choices:
        if not (c is None or isinstance(c, (bool, int, float, str))):
            raise UserError(
                f"{where}: choice {c!r}: choices must be numbers, strings, true/false or null"
            )
    return tuple(choices)


def _edge_values(dist: BaseDistribution) -> list[tuple[str, Any]]:
    choices = getattr(dist, "choices", None)
    if choices is not None:
        return [("choice", c) for c in choices]
    return [("low", dist.low), ("high", dist.high)]


def _check_value(base: dict[str, Any], key: str, label: str, value: Any, where: str) -> None:
    """The config with `key` at this value must still validate (e.g. train.lr > 0)."""
    section, name = key.split(".", 1)
    data = {**base, section: {**base[section], name: value}}
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].lower()
        raise UserError(f"{where}: {label} {value!r} is not a valid {key} ({msg})") from None
