"""The command line: bad input is one line on stderr and exit 2, never a traceback.

In-process through ``mltune.cli.main`` where possible (fast); through ``python -m mltune`` where
the real entry point matters. Both use a real on-disk copy of the 6.18 tree as ``--root``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mltune.sysfs import Root


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def mltune(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mltune", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- usage errors ----------------------------------------------------------------------


def test_unknown_driver_exits_2_naming_valid_drivers(cli) -> None:
    code, _, err = cli("run", "--driver", "nope", "--dry-run")
    assert code == 2
    assert one_line(err) == "mltune: error: unknown driver 'nope'; valid: readahead"


def test_interval_zero_exits_2(cli, root_copy: Path) -> None:
    code, _, err = cli("run", "--driver", "readahead", "--interval", "0", "--dry-run",
                       "--root", str(root_copy))
    assert code == 2
    assert "--interval 0: must be between 0.05 and 3600 seconds" in one_line(err)


def test_interval_not_a_number_exits_2_without_traceback() -> None:
    done = mltune("run", "--driver", "readahead", "--interval", "abc", "--dry-run")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("mltune: error: Invalid value for '--interval'")


def test_non_root_without_dry_run_exits_2(cli, root_copy: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    before = files_of(root_copy)
    code, _, err = cli("run", "--driver", "readahead", "--root", str(root_copy),
                       "--state-dir", str(root_copy.parent / "state"))
    assert code == 2
    assert one_line(err) == ("mltune: error: writing kernel knobs needs root: "
                             "run as root or add --dry-run")
    assert files_of(root_copy) == before
    assert not (root_copy.parent / "state").exists()


def test_unknown_device_exits_2_listing_valid_devices(cli, root_copy: Path) -> None:
    code, _, err = cli("run", "--driver", "readahead", "--device", "sdz", "--dry-run",
                       "--root", str(root_copy))
    assert code == 2
    assert one_line(err) == ("mltune: error: unknown device sdz; "
                             "block devices with read_ahead_kb: loop0, loop2, vda, zram0")


def test_bad_config_file_exits_2_naming_the_key(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("interval: soon\n")
    code, _, err = cli("run", "--driver", "readahead", "--dry-run", "--config", str(cfg))
    assert code == 2
    assert one_line(err).startswith("mltune: error: interval: expected seconds")


# -- drivers ---------------------------------------------------------------------------


def test_drivers_json_reports_availability_and_targets(root_copy: Path) -> None:
    done = mltune("drivers", "--json", "--root", str(root_copy))
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["driver"] for r in rows] == ["readahead"]
    r = rows[0]
    assert {"driver", "available", "reason", "targets"} <= set(r)
    # Default config: loop*, zram* and ram* are left alone unless named.
    assert (r["available"], r["reason"], r["targets"]) == (True, "", ["vda"])


def test_drivers_on_a_host_without_block_devices(cli, tmp_path: Path) -> None:
    code, out, _ = cli("drivers", "--json", "--root", str(tmp_path))
    assert code == 0
    [r] = json.loads(out)
    assert r["available"] is False and r["targets"] == []
    assert "read_ahead_kb" in r["reason"]


def test_drivers_plain_text_is_one_line_per_driver(cli, root_copy: Path) -> None:
    code, out, _ = cli("drivers", "--root", str(root_copy))
    assert code == 0
    assert out.splitlines() == ["readahead   read_ahead_kb  available; targets: vda"]


# -- run -------------------------------------------------------------------------------


def test_dry_run_once_exits_0_and_writes_nothing(root_copy: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = files_of(root_copy)
    done = mltune("run", "--driver", "readahead", "--device", "loop0", "--dry-run", "--once",
                  "--root", str(root_copy), "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "loop0 (dry run)" in done.stderr
    assert files_of(root_copy) == before
    assert not (state / "journal.json").exists()
    # The audit log is the point of a dry run: it says what would have happened.
    [line] = (state / "audit.jsonl").read_text().splitlines()
    d = json.loads(line)
    assert (d["target"], d["written"], d["dry_run"], d["source"]) == ("loop0", None, True, "proc")


def test_the_audit_log_is_rotated_at_the_configured_cap(root_copy: Path, tmp_path: Path) -> None:
    state, conf = tmp_path / "state", tmp_path / "small.yaml"
    conf.write_text("audit_max_mb: 0.0005\n")  # ~520 bytes: one decision line fills it
    for _ in range(2):
        done = mltune("run", "--driver", "readahead", "--device", "loop0", "--dry-run", "--once",
                      "--root", str(root_copy), "--state-dir", str(state), "--config", str(conf))
        assert done.returncode == 0, done.stderr
    [old] = (state / "audit.jsonl.1").read_text().splitlines()
    [new] = (state / "audit.jsonl").read_text().splitlines()
    assert json.loads(old)["time"] < json.loads(new)["time"]


def test_dry_run_works_without_root(cli, root_copy: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    before = files_of(root_copy)
    code, _, err = cli("run", "--driver", "readahead", "--device", "vda", "--dry-run",
                       "--once", "--root", str(root_copy), "--state-dir", str(tmp_path / "s"))
    assert code == 0, err
    assert files_of(root_copy) == before


# -- restore ---------------------------------------------------------------------------


def test_restore_with_empty_state_says_so(cli, root_copy: Path, tmp_path: Path) -> None:
    code, _, err = cli("restore", "--state-dir", str(tmp_path), "--root", str(root_copy))
    assert code == 0
    assert "journal empty: nothing to restore" in err


def test_restore_with_corrupt_journal_exits_1(cli, root_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "journal.json").write_text('{"format": "mltune-jour')
    code, _, err = cli("restore", "--state-dir", str(tmp_path), "--root", str(root_copy))
    assert code == 1
    assert one_line(err).startswith(f"mltune: error: journal {tmp_path}/journal.json is "
                                    "unreadable or corrupt")


# -- resume ----------------------------------------------------------------------------


def test_resume_leaves_a_request_file_in_the_state_dir(cli, tmp_path: Path) -> None:
    code, out, err = cli("resume", "loop0", "--state-dir", str(tmp_path))
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["resume-loop0"]
    assert "resume requested for loop0" in out


def test_resume_request_is_picked_up_by_the_running_agent(cli, tmp_path: Path) -> None:
    from tests.test_loop import PREFERS_1024, StubModel, agent

    (tmp_path / "root" / "sys" / "fake" / "a").mkdir(parents=True)
    (tmp_path / "root" / "sys" / "fake" / "a" / "knob").write_text("4\n")
    root = Root(tmp_path / "root")
    state = tmp_path / "state"
    state.mkdir()
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.tick()
    root.write("sys/fake/a/knob", "64")
    a.tick()
    assert set(a.frozen) == {"a"}
    assert cli("resume", "a", "--state-dir", str(state))[0] == 0
    a.run(interval=3600, stop=threading.Event(), once=True)
    assert a.frozen == {}
    assert root.read("sys/fake/a/knob") == "1024"
    assert not (state / "resume-a").exists()


def test_resume_without_state_dir_exits_2(cli, tmp_path: Path) -> None:
    code, _, err = cli("resume", "loop0", "--state-dir", str(tmp_path / "none"))
    assert code == 2
    assert one_line(err) == (f"mltune: error: state dir {tmp_path}/none does not exist: "
                             "is an agent running?")


@pytest.mark.parametrize("target", ["../journal.json", "loop0/x", ""])
def test_resume_target_that_is_not_a_plain_name_exits_2(cli, tmp_path: Path,
                                                        target: str) -> None:
    code, _, err = cli("resume", target, "--state-dir", str(tmp_path))
    assert code == 2
    assert one_line(err) == f"mltune: error: target {target!r}: expected a name like loop0"
    assert list(tmp_path.iterdir()) == []


def test_resume_request_that_cannot_be_written_exits_2(cli, tmp_path: Path) -> None:
    # ENAMETOOLONG here; EACCES for a non-root user on /run/mltune takes the same path.
    code, _, err = cli("resume", "x" * 300, "--state-dir", str(tmp_path))
    assert code == 2
    assert one_line(err) == f"mltune: error: state dir {tmp_path}: File name too long"
