"""Configuration: the shipped defaults merged with a user's YAML file, then validated.

Validation names the key path and the problem (``drivers.readahead.policies.min_gain:
expected a number in [0, 1], got 'high'``) so a bad file is fixed in one try.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .modes import START_MODES
from .tracing import SOURCES

# key → (type(s), check, description); nested dicts are schemas themselves.
_NUM = (int, float)
_POLICIES = {
    "range": {"min": (int, lambda v: v >= 0, ">= 0"), "max": (int, lambda v: v >= 4, ">= 4")},
    "min_gain": (_NUM, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "min_gain_further": (_NUM, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "min_gain_plateau": {"from": (int, lambda v: v >= 0, ">= 0"),
                         "gain": (_NUM, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
                         "near_factor": (_NUM, lambda v: 1 <= v <= 1 << 20,
                                         "a factor in [1, 1048576]"),
                         "near_gain": (_NUM, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
                         "near_s": (_NUM, lambda v: 0 <= v <= 86400, "seconds in [0, 86400]")},
    "cooldown_s": (_NUM, lambda v: 0 <= v <= 86400, "seconds in [0, 86400]"),
    "max_step_factor": (_NUM, lambda v: 1 < v <= 1 << 20, "a number in (1, 1048576]"),
    "max_changes_per_hour": (int, lambda v: v >= 1, "an integer >= 1"),
    "pressure": {
        "memory_full_avg10": (_NUM, lambda v: 0 < v <= 100, "a percentage in (0, 100]"),
        "io_full_avg10": (_NUM, lambda v: 0 < v <= 100, "a percentage in (0, 100]"),
    },
    "regression": {
        "window_ticks": (int, lambda v: 1 <= v <= 1000, "an integer in [1, 1000]"),
        "settle_ticks": (int, lambda v: 0 <= v <= 1000, "an integer in [0, 1000]"),
        "tolerance": (_NUM, lambda v: 0 < v < 1, "a fraction in (0, 1)"),
        "veto_s": (_NUM, lambda v: 0 <= v <= 86400 * 7, "seconds in [0, 604800]"),
        "workload_shift": (_NUM, lambda v: 0 < v <= 1, "a number in (0, 1]"),
        "min_before": (int, lambda v: 1 <= v <= 1000, "an integer in [1, 1000]"),
    },
}
_PERCENT = (_NUM, lambda v: 0 < v <= 100, "a percentage in (0, 100]")
_MODES = {
    "promote_after": (int, lambda v: v >= 1, "an integer >= 1"),
    "demote_after": (int, lambda v: v >= 1, "an integer >= 1"),
    "max_prediction_error": (_NUM, lambda v: v > 1, "a factor > 1"),
    "learning_step_factor": (_NUM, lambda v: 1 < v <= 1 << 20, "a number in (1, 1048576]"),
    "emergency_after_errors": (int, lambda v: v >= 1, "an integer >= 1"),
    "emergency_pressure": {"memory_full_avg10": _PERCENT, "io_full_avg10": _PERCENT},
    "calm_ticks": (int, lambda v: v >= 1, "an integer >= 1"),
}
_READAHEAD = {
    "include": (list, lambda v: all(isinstance(x, str) for x in v), "a list of patterns"),
    "exclude": (list, lambda v: all(isinstance(x, str) for x in v), "a list of patterns"),
    "trace": (bool, lambda v: True, "true or false"),
    "trace_source": (str, lambda v: v in SOURCES, f"one of {', '.join(SOURCES)}"),
    "sample_window_s": (_NUM, lambda v: 0.001 <= v <= 1, "seconds in [0.001, 1]"),
    "model": ((str, type(None)), lambda v: True, "a path or null"),
    "mode": (str, lambda v: v in START_MODES, f"one of {', '.join(START_MODES)}"),
    "modes": _MODES,
    "policies": _POLICIES,
}
SCHEMA: dict[str, Any] = {
    "interval": (_NUM, lambda v: 0.05 <= v <= 3600, "seconds in [0.05, 3600]"),
    "watch_s": (_NUM, lambda v: 0 <= v <= 3600, "seconds in [0, 3600] (0: off)"),
    "state_dir": (str, lambda v: bool(v), "a directory path"),
    "audit_max_mb": (_NUM, lambda v: 0 <= v <= 1e6, "megabytes in [0, 1000000] (0: no limit)"),
    "drivers": {"readahead": _READAHEAD},
}


def defaults() -> dict[str, Any]:
    text = (resources.files("mltune.configs") / "default.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) \
            else v
    return out


def _shown(value: Any) -> str:
    """A short repr on one line, whatever YAML built (deep lists, aliases, huge ints)."""
    try:
        return reprlib.repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits(), e.g. from 0xfff…
        return f"<{type(value).__name__} too large to show>"


def _key(key: Any) -> str:
    # A key may hold a newline or any other control character: the error stays one line.
    return key if isinstance(key, str) and key.isprintable() else _shown(key)


def validate(data: Any, schema: dict[str, Any] = SCHEMA, path: str = "") -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    for key, value in data.items():
        where = f"{path}.{_key(key)}" if path else _key(key)
        if key not in schema:
            raise ConfigError(f"{where}: unknown key (valid: {', '.join(schema)})")
        rule = schema[key]
        if isinstance(rule, dict):
            validate(value, rule, where)
            continue
        types, check, desc = rule
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple)
                                                    else (types,)):
            raise ConfigError(f"{where}: expected {desc}, got {_shown(value)}")
        if not isinstance(value, types) or not check(value):
            raise ConfigError(f"{where}: expected {desc}, got {_shown(value)}")


def _first_line(err: Exception) -> str:
    return next(iter(str(err).splitlines()), type(err).__name__)


def load(path: Path | None) -> dict[str, Any]:
    """Defaults, overlaid with ``path`` if given; raises ConfigError naming the bad key."""
    base = defaults()
    if path is None:
        return base
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from err
    try:
        user = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({_first_line(err)})") from err
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        # PyYAML's constructors let these out on scalars that look typed but are not
        # (`2020-13-45`, `!!bool maybe`, `!!timestamp x`: yaml/pyyaml#382, #899), and its
        # composer recurses once per nesting level.
        raise ConfigError(f"{path}: not valid YAML ({type(err).__name__}: "
                          f"{_first_line(err)})") from err
    if user is None:  # an empty file means defaults; `[]`, `0` or `false` is an error
        user = {}
    validate(user)
    merged = _merge(base, user)
    rng = merged["drivers"]["readahead"]["policies"]["range"]
    if rng["min"] > rng["max"]:
        raise ConfigError("drivers.readahead.policies.range: min is larger than max")
    return merged
