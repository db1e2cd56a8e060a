"""Settings as both images take them: a JSON file (the operator's ConfigMap), then
environment variables, then command-line flags, validated by a pydantic model; a bad
value is one line naming the field and why, never a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """One line naming the bad setting and why."""


def load_layered(
    model: type[M],
    path: Path | None,
    env: Mapping[str, str],
    overrides: Mapping[str, Any],
    *,
    json_keys: Collection[str] = (),
    what: str,
) -> M:
    """``env`` maps field names to variable names; ``json_keys`` are parsed from JSON."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {path} must hold a JSON object")
        values.update(loaded)
    for key, var in env.items():
        if var in os.environ:
            raw = os.environ[var]
            try:
                values[key] = json.loads(raw) if key in json_keys else raw
            except ValueError:
                raise ConfigError(f"{var} must be JSON") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid {what}: {problems}") from None
