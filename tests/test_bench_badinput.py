"""bench/overhead.py and bench/history.py refuse bad input before they set up a lab:
exit 2, one line."""

from __future__ import annotations

import shutil
import sys
import time
import types

import pytest

from .test_bench_aggregate import BENCH, _load

overhead = _load("overhead", BENCH / "overhead.py")


@pytest.mark.parametrize(("argv", "says"), [
    (["--patterns", "seq,nope"], "unknown pattern 'nope'"),
    (["--patterns", "seq,mmap-rand", "--values", "2048"], "one number (KiB) per pattern"),
    (["--patterns", "seq", "--values", "big"], "one number (KiB) per pattern"),
    (["--pairs", "0"], "--pairs >= 1"),
])
def test_bad_input_exits_2_with_one_line(argv: list[str], says: str,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["overhead.py", *argv])
    monkeypatch.setattr(overhead, "Lab", None)  # reaching the lab would fail differently
    with pytest.raises(SystemExit) as exc:
        overhead.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


history = _load("history", BENCH / "history.py")


@pytest.mark.parametrize("argv", [["--stream", "2048,x"], ["--repeat", "0"],
                                  ["--duration", "-1"]])
def test_history_bad_input_exits_2_with_one_line(argv: list[str],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["history.py", *argv])
    monkeypatch.setattr(history, "Lab", None)
    with pytest.raises(SystemExit) as exc:
        history.main()
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


class _FakeLab:
    device = "/dev/loop9"

    def drop_caches(self) -> None:
        pass

    def run(self, pattern: str, seconds: float) -> object:
        time.sleep(0.3)  # the "agent" (/bin/false) has exited by the end of the run
        return types.SimpleNamespace(mbps=100.0)


def test_overhead_refuses_a_figure_taken_after_the_agent_died(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overhead, "WARMUP_S", 0.0)
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    with pytest.raises(SystemExit, match="the agent exited"):
        overhead.run_phase(_FakeLab(), "seq", 1.0, True, 1.0)  # type: ignore[arg-type]
    assert overhead.run_phase(_FakeLab(), "seq", 1.0, False, 1.0) == 100.0  # type: ignore[arg-type]
