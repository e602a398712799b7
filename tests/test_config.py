"""Configuration: shipped defaults, a user file merged over them, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from mltune import config as configmod
from mltune.errors import ConfigError


def user_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "mltune.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_load_and_pass_their_own_validation() -> None:
    cfg = configmod.load(None)
    assert cfg == configmod.defaults()
    configmod.validate(cfg)
    assert cfg["interval"] == 1.0
    ra = cfg["drivers"]["readahead"]
    assert ra["exclude"] == ["loop*", "zram*", "ram*"]
    assert ra["policies"] == {"range": {"min": 4, "max": 4096}, "min_gain": 0.05,
                              "cooldown_s": 0.9}


def test_user_file_overrides_one_key_and_keeps_the_rest(tmp_path: Path) -> None:
    cfg = configmod.load(user_file(tmp_path, "drivers:\n  readahead:\n    policies:\n"
                                             "      min_gain: 0.1\n"))
    p = cfg["drivers"]["readahead"]["policies"]
    assert p["min_gain"] == 0.1
    assert p["cooldown_s"] == 0.9 and p["range"] == {"min": 4, "max": 4096}


def test_empty_user_file_means_defaults(tmp_path: Path) -> None:
    assert configmod.load(user_file(tmp_path, "# nothing\n")) == configmod.defaults()


def test_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    p = user_file(tmp_path, "drivers:\n  readahead:\n    polices:\n      min_gain: 0.1\n")
    with pytest.raises(ConfigError) as info:
        configmod.load(p)
    assert str(info.value).startswith("drivers.readahead.polices: unknown key (valid: ")
    assert "policies" in str(info.value)


def test_unknown_driver_is_an_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^drivers\.swappiness: unknown key"):
        configmod.load(user_file(tmp_path, "drivers:\n  swappiness: {}\n"))


def test_wrong_type_names_the_path_and_the_value(tmp_path: Path) -> None:
    p = user_file(tmp_path, "drivers:\n  readahead:\n    policies:\n      min_gain: high\n")
    with pytest.raises(ConfigError) as info:
        configmod.load(p)
    assert str(info.value) == ("drivers.readahead.policies.min_gain: "
                               "expected a number in [0, 1], got 'high'")


def test_yaml_boolean_is_not_a_number(tmp_path: Path) -> None:
    # YAML `yes`/`true` is a bool, and bool is an int in Python.
    with pytest.raises(ConfigError, match=r"^interval: expected seconds .*got True"):
        configmod.load(user_file(tmp_path, "interval: true\n"))


def test_out_of_range_number_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^interval: expected seconds in \[0.05, 3600\]"):
        configmod.load(user_file(tmp_path, "interval: 0\n"))


def test_section_that_is_not_a_mapping_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^drivers\.readahead: expected a mapping, got list"):
        configmod.load(user_file(tmp_path, "drivers:\n  readahead: [1, 2]\n"))


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: expected a mapping, got list"):
        configmod.load(user_file(tmp_path, "- interval: 1\n"))


def test_range_min_above_max_is_refused(tmp_path: Path) -> None:
    p = user_file(tmp_path, "drivers:\n  readahead:\n    policies:\n"
                            "      range: {min: 2048, max: 1024}\n")
    with pytest.raises(ConfigError, match=r"range: min is larger than max"):
        configmod.load(p)


def test_range_min_above_default_max_is_refused_after_merge(tmp_path: Path) -> None:
    p = user_file(tmp_path, "drivers:\n  readahead:\n    policies:\n      range: {min: 8192}\n")
    with pytest.raises(ConfigError, match=r"min is larger than max"):
        configmod.load(p)


def test_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    p = user_file(tmp_path, "drivers:\n  readahead: {include: [\"*\"\n")
    with pytest.raises(ConfigError) as info:
        configmod.load(p)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{p}: not valid YAML (")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file or directory"):
        configmod.load(tmp_path / "absent.yaml")
