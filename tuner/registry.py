"""Explicit registries: plain lists, no import-time scanning or decorators."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .errors import ConfigError


def _readahead(root: Any, **opts: Any) -> Any:
    from mltune.drivers.readahead import ReadaheadDriver  # imported on use: keeps CLI start fast

    return ReadaheadDriver(root, **opts)


# name → factory(root, **options). Add a driver by adding one line here.
DRIVERS: Sequence[tuple[str, Callable[..., Any]]] = (
    ("readahead", _readahead),
)


def _index(entries: Sequence[tuple[str, Callable[..., Any]]]) -> dict[str, Callable[..., Any]]:
    out: dict[str, Callable[..., Any]] = {}
    for name, factory in entries:
        if name in out:
            raise ValueError(f"duplicate registry name {name!r}")
        out[name] = factory
    return out


def driver_names() -> list[str]:
    return [n for n, _ in DRIVERS]


def make_driver(name: str, root: Any, **opts: Any) -> Any:
    drivers = _index(DRIVERS)
    if name not in drivers:
        raise ConfigError(f"unknown driver {name!r}; valid: {', '.join(drivers)}")
    return drivers[name](root, **opts)
