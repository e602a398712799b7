"""Property tests: whatever a configuration file holds, loading it gives a config or one
ConfigError line, never a traceback.

Documents are built three ways: nested values shaped like the schema (so the nested checks are
reached), random YAML dumps of any nesting, and raw text (YAML's implicit typing turns plain
scalars like ``2020-13-45`` into dates, and tags like ``!!bool`` into constructor calls).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mltune import config as configmod
from mltune.errors import ConfigError

SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(st.characters(codec="utf-8"), max_size=12))
SCHEMA_KEYS = sorted({"interval", "state_dir", "drivers", "readahead", "include", "exclude",
                      "trace", "sample_window_s", "model", "policies", "range", "min", "max",
                      "min_gain", "cooldown_s", "max_step_factor", "max_changes_per_hour",
                      "pressure", "memory_full_avg10", "io_full_avg10"})
KEYS = st.sampled_from(SCHEMA_KEYS) | SCALARS
ANY = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=4)
                   | st.dictionaries(KEYS, kids, max_size=4), max_leaves=16)


def shaped(schema: dict[str, Any]) -> st.SearchStrategy[dict[Any, Any]]:
    """Mappings with (some of) the schema's keys, right or wrong values, now and then a stray
    key: most examples get past the top level into the nested checks."""
    optional = {k: (shaped(rule) | ANY) if isinstance(rule, dict) else ANY
                for k, rule in schema.items()}
    return st.builds(lambda known, extra: {**extra, **known},
                     st.fixed_dictionaries({}, optional=optional),
                     st.dictionaries(KEYS, ANY, max_size=1))


DOCUMENTS = (shaped(configmod.SCHEMA).map(yaml.safe_dump)
             | ANY.map(yaml.safe_dump)
             | st.builds("{}: {}\n".format, st.sampled_from(SCHEMA_KEYS),
                         st.text(st.characters(codec="utf-8"), max_size=20))
             | st.text(st.characters(codec="utf-8"), max_size=60))

# Files that once escaped as something other than ConfigError, or as several lines.
KNOWN = [
    "interval: 2020-13-45\n",  # a plain scalar YAML types as a date, then cannot build
    "interval: !!bool maybe\n",
    "interval: !!timestamp nope\n",  # yaml/pyyaml#899
    "[" * 3000 + "]" * 3000,  # PyYAML's composer recurses once per level
    "interval: " + "9" * 5000 + "\n",  # beyond int()'s 4300-digit limit
    "interval: 0x" + "f" * 5000 + "\n",  # hex is parsed, but the error message cannot show it
    '"inter\\nval": 1\n',  # a key with a newline in it: the message must stay one line
    "[]\n",  # falsy, but not a mapping
    "0\n",
    "false\n",
]


def one_config_error_line(path: Path) -> None:
    try:
        cfg = configmod.load(path)
    except ConfigError as err:
        msg = str(err)
        assert msg and len(msg.splitlines()) == 1, msg
        return
    assert isinstance(cfg, dict)
    configmod.validate(cfg)  # what load returns passes its own checks


@pytest.fixture(scope="module")
def cfg_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One file rewritten by every example (function-scoped tmp_path does not mix with
    @given)."""
    yield tmp_path_factory.mktemp("cfg") / "mltune.yaml"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=DOCUMENTS)
def test_load_gives_a_config_or_one_config_error_line(cfg_file: Path, text: str) -> None:
    cfg_file.write_text(text, encoding="utf-8")
    one_config_error_line(cfg_file)


@pytest.mark.parametrize("text", KNOWN, ids=range(len(KNOWN)))
def test_known_hostile_files_give_one_config_error_line(tmp_path: Path, text: str) -> None:
    p = tmp_path / "mltune.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        configmod.load(p)
    assert len(str(info.value).splitlines()) == 1


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=40))
@example(data=b"interval: \xff\n")
def test_bytes_that_are_not_utf8_give_a_config_or_one_config_error_line(
        cfg_file: Path, data: bytes) -> None:
    cfg_file.write_bytes(data)
    one_config_error_line(cfg_file)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(text=DOCUMENTS)
@example(text=KNOWN[0])
@example(text=KNOWN[6])
def test_config_validate_exits_0_or_2_with_one_stderr_line(cfg_file: Path, text: str) -> None:
    cfg_file.write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mltune", "config", "validate", str(cfg_file)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in done.stderr
    if done.returncode == 0:
        assert (done.stdout, done.stderr) == (f"{cfg_file}: ok\n", "")
    else:
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith("mltune: error: ")
