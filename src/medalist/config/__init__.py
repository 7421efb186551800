"""Config: schema, loading, overrides."""

from medalist.config.load import (
    config_to_dict,
    dump_config,
    flatten,
    load_config,
    project_root_for,
    validate_config,
)
from medalist.config.schema import Config

__all__ = [
    "Config",
    "config_to_dict",
    "dump_config",
    "flatten",
    "load_config",
    "project_root_for",
    "validate_config",
]
