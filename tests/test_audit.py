"""The audit log: kept open, reopened after a rotation, never fatal."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from mltune.audit import AuditLog


def test_lines_are_appended_in_order(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write(['{"a":1}'])
    log.write(['{"b":2}', '{"c":3}'])
    log.write([])
    log.close()
    assert (tmp_path / "audit.jsonl").read_text() == '{"a":1}\n{"b":2}\n{"c":3}\n'


def test_a_rotated_log_is_reopened_at_its_path(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.write(['{"before":1}'])
    path.rename(tmp_path / "audit.jsonl.1")  # logrotate without copytruncate
    log.write(['{"after":1}'])
    path.unlink()
    log.write(['{"removed":1}'])
    log.close()
    assert (tmp_path / "audit.jsonl.1").read_text() == '{"before":1}\n'
    assert path.read_text() == '{"removed":1}\n'


def test_an_unwritable_log_warns_and_recovers(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "gone" / "audit.jsonl"
    log = AuditLog(path)
    with caplog.at_level(logging.WARNING, logger="mltune"):
        log.write(['{"lost":1}'])
    assert "not written" in caplog.text and str(path) in caplog.text
    path.parent.mkdir()
    log.write(['{"kept":1}'])
    log.close()
    assert path.read_text() == '{"kept":1}\n'


def test_past_its_cap_the_log_is_rotated_once_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, max_bytes=100)
    lines = [f'{{"n":{i:02d},"pad":"{"x" * 20}"}}' for i in range(20)]  # 38 bytes a line
    for line in lines:
        log.write([line])
    log.close()
    rotated, current = (tmp_path / "audit.jsonl.1").read_text(), path.read_text()
    assert len(rotated) <= 100 and len(current) <= 100
    # Nothing lost between the two files but what rotated out of .1, in order.
    kept = (rotated + current).splitlines()
    assert kept == lines[-4:]  # two whole lines fit under the cap in each file


def test_a_line_larger_than_the_cap_is_still_written(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, max_bytes=10)
    log.write(['{"a":"longer than the cap"}'])
    log.write(['{"b":"and the next rotates it"}'])
    log.close()
    assert (tmp_path / "audit.jsonl.1").read_text() == '{"a":"longer than the cap"}\n'
    assert path.read_text() == '{"b":"and the next rotates it"}\n'


def test_an_existing_log_counts_towards_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"old":"from the last run of the agent"}\n')
    log = AuditLog(path, max_bytes=50)
    log.write(['{"new":"first line of this run"}'])
    log.close()
    assert (tmp_path / "audit.jsonl.1").read_text() == '{"old":"from the last run of the agent"}\n'


def test_a_short_write_is_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:3])))
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write(['{"a":1}', '{"b":2}'])
    log.close()
    assert (tmp_path / "audit.jsonl").read_text() == '{"a":1}\n{"b":2}\n'
