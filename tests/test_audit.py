"""The audit log: kept open, reopened after a rotation, never fatal."""

from __future__ import annotations

import logging
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
