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
    assert ra["policies"] == {"range": {"min": 4, "max": 4096}, "min_gain": 0.10,
                              "min_gain_further": 0.03,
                              "min_gain_plateau": {"from": 256, "gain": 0.30,
                                                   "near_factor": 4, "near_gain": 0.05,
                                                   "near_s": 1.5},
                              "cooldown_s": 0.5, "max_step_factor": 1024,
                              "max_changes_per_hour": 120,
                              "pressure": {"memory_full_avg10": 60, "io_full_avg10": 100},
                              "regression": {"window_ticks": 3, "settle_ticks": 1,
                                             "tolerance": 0.3, "veto_s": 600,
                                             "workload_shift": 0.25, "min_before": 2}}
    assert ra["mode"] == "collaboration"


def test_user_file_overrides_one_key_and_keeps_the_rest(tmp_path: Path) -> None:
    cfg = configmod.load(user_file(tmp_path, "drivers:\n  readahead:\n    policies:\n"
                                             "      min_gain: 0.1\n"))
    p = cfg["drivers"]["readahead"]["policies"]
    assert p["min_gain"] == 0.1
    assert p["cooldown_s"] == 0.5 and p["range"] == {"min": 4, "max": 4096}


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


# -- max step, changes per hour, pressure guard ------------------------------------------


def policies_file(tmp_path: Path, body: str) -> Path:
    return user_file(tmp_path, "drivers:\n  readahead:\n    policies:\n" + body)


def test_one_pressure_threshold_overrides_and_the_other_keeps_its_default(
        tmp_path: Path) -> None:
    cfg = configmod.load(policies_file(tmp_path, "      pressure: {io_full_avg10: 80.5}\n"
                                                 "      max_step_factor: 4\n"
                                                 "      max_changes_per_hour: 10\n"))
    p = cfg["drivers"]["readahead"]["policies"]
    assert p["pressure"] == {"memory_full_avg10": 60, "io_full_avg10": 80.5}
    assert (p["max_step_factor"], p["max_changes_per_hour"]) == (4, 10)


@pytest.mark.parametrize(("body", "message"), [
    ("max_step_factor: 1", "max_step_factor: expected a number in (1, 1048576], got 1"),
    ("max_step_factor: .nan", "max_step_factor: expected a number in (1, 1048576], got nan"),
    ("max_step_factor: big", "max_step_factor: expected a number in (1, 1048576], got 'big'"),
    ("max_changes_per_hour: 0", "max_changes_per_hour: expected an integer >= 1, got 0"),
    ("max_changes_per_hour: 2.5", "max_changes_per_hour: expected an integer >= 1, got 2.5"),
    ("max_changes_per_hour: true", "max_changes_per_hour: expected an integer >= 1, got True"),
    ("pressure: {memory_full_avg10: 0}",
     "pressure.memory_full_avg10: expected a percentage in (0, 100], got 0"),
    ("pressure: {io_full_avg10: 101}",
     "pressure.io_full_avg10: expected a percentage in (0, 100], got 101"),
    ("pressure: {io_full: 50}", "pressure.io_full: unknown key (valid: memory_full_avg10, "
                                "io_full_avg10)"),
    ("pressure: 60", "pressure: expected a mapping, got int"),
])
def test_new_policy_keys_are_checked_and_named_with_their_path(
        tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        configmod.load(policies_file(tmp_path, f"      {body}\n"))
    assert str(info.value) == f"drivers.readahead.policies.{message}"


def test_audit_cap_must_be_a_non_negative_size(tmp_path: Path) -> None:
    assert configmod.load(None)["audit_max_mb"] == 16
    with pytest.raises(ConfigError, match=r"^audit_max_mb: expected megabytes in \[0, "):
        configmod.load(user_file(tmp_path, "audit_max_mb: -1\n"))
