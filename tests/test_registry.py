"""Explicit registries: a plain list, duplicates fail loudly, unknown names list valid ones."""

from __future__ import annotations

import pytest
from mltune.errors import ConfigError
from mltune.registry import DRIVERS, _index, driver_names, make_driver
from mltune.sysfs import Root


def test_driver_names_in_registry_order() -> None:
    assert driver_names() == [name for name, _ in DRIVERS] == ["readahead"]


def test_duplicate_names_are_refused_and_named() -> None:
    with pytest.raises(ValueError, match="duplicate registry name 'readahead'"):
        _index([*DRIVERS, ("readahead", lambda root: None)])


def test_unknown_driver_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown driver 'nope'; valid: readahead"):
        make_driver("nope", Root("/"))


def test_make_driver_passes_root_and_options() -> None:
    drv = make_driver("readahead", Root("/nonexistent"), devices=["vda"], trace=False)
    assert (drv.name, drv.devices, drv.trace) == ("readahead", ("vda",), False)
    assert drv.root.root.as_posix() == "/nonexistent"
