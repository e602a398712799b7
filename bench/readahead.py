"""Benchmark read_ahead_kb regimes over a sequence of access-pattern phases (run as root).

Regimes, each run over the same phases on one lab (loop device, 256 MiB memory cgroup):

* ``static-N``: read_ahead_kb fixed at N for every phase (the sweep);
* ``default``: the device's own value, read before anything was touched;
* ``tuned-throughput-performance``: 4096, what tuned's profile of that name sets;
* ``oracle``: per phase, the best static value of this run (sweep, default, 4096), written at
  phase start;
* ``mltune``: the agent, started 3 s before the first phase and stopped with SIGTERM after
  the last one.

The page cache is dropped before each regime, never between phases: a real workload keeps its
cache when its access pattern changes. Score = geometric mean over phases of
(MB/s in the phase / best static MB/s for that phase in this run). The default and 4096 reuse
the sweep's measurement when the sweep has that value.

    python bench/readahead.py --duration 8
    python bench/readahead.py --skip-mltune --duration 2 --values 4,1024 --phases seq,mmap-rand
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from mltune.lab import (
    BENCH_PHASES,
    PATTERNS,
    FioResult,
    Lab,
    LabError,
    loop_name,
    mount_of_loop,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

SWEEP = (4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
# tuned's throughput-performance profile: [disk] readahead=>4096 (KiB; ">" = only ever raise).
TUNED_THROUGHPUT_PERFORMANCE = 4096
AGENT_WARMUP_S = 3.0
OTHER_IO_MBPS = 5.0  # foreign I/O on the backing disk above this flags a phase as disturbed
DEFAULT_AGENT_CMD = ("{python} -m mltune run --driver readahead --device {device} "
                     "--interval 1.0 --state-dir {state_dir}")
RESULTS = Path(__file__).resolve().parent / "results"

Progress = Callable[[str], None]


class BadInput(Exception):
    """Bad command-line input: one line on stderr, exit 2."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PhaseRun:
    """One phase of one regime: what was set, when it ran, what fio read."""

    phase: str
    value: int | None  # read_ahead_kb written at phase start; None when the agent decides
    started: float  # epoch seconds
    ended: float
    result: FioResult
    other_mb: float | None  # I/O on the backing disk that was not ours (None: unknown disk)


@dataclass(frozen=True)
class RegimeRun:
    name: str
    phases: tuple[PhaseRun, ...]
    same_as: str | None = None  # reused the measurement of that (identical) regime
    error: str | None = None


@dataclass(frozen=True)
class AgentStats:
    """What the agent cost and how fast it settled, from /proc and its audit log."""

    cpu_percent: float | None  # of one core, over the phases
    median_tick_ms: float | None
    peak_rss_mb: float | None
    settle_s: tuple[float, ...]  # per phase: last change in the phase minus phase start
    decisions: int
    changes: int
    exit_code: int | None
    exited_early: bool  # the agent was gone before the last phase ended
    restored: bool | None  # read_ahead_kb back at its pre-agent value after SIGTERM
    chosen: tuple[int | None, ...] = ()  # read_ahead_kb at the end of each phase
    unreadable_audit_lines: int = 0


# --------------------------------------------------------------------------- command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = _Parser(prog="readahead.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--phases", default=",".join(BENCH_PHASES),
                   help="comma-separated patterns; a name may repeat (default: %(default)s)")
    p.add_argument("--duration", type=float, default=8.0,
                   help="seconds per phase (default: %(default)s)")
    p.add_argument("--shuffle", type=int, metavar="SEED", help="random phase order")
    p.add_argument("--values", help=f"read_ahead_kb sweep (default: {','.join(map(str, SWEEP))})")
    p.add_argument("--json", type=Path, help="raw results (default: bench/results/...)")
    p.add_argument("--device", help="existing loop device with a mounted filesystem")
    p.add_argument("--workdir", type=Path, default=Path("/var/tmp"),
                   help="where the lab puts its backing file and job files")
    p.add_argument("--skip-mltune", action="store_true", help="do not run the agent")
    p.add_argument("--agent-cmd", default=DEFAULT_AGENT_CMD,
                   help="agent command; {python} {device} {state_dir} are filled in")
    p.add_argument("--reopen", type=float, default=0.5,
                   help="seconds between re-opens of random readers (default: %(default)s)")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> tuple[list[str], list[int]]:
    """Validate what argparse cannot; return the phase sequence and the sweep."""
    phases = _csv(args.phases)
    unknown = sorted({p for p in phases if p not in PATTERNS})
    if not phases or unknown:
        raise BadInput(f"unknown phase {', '.join(unknown) or '(none given)'}; "
                       f"known: {', '.join(PATTERNS)}")
    try:
        values = sorted({int(v) for v in _csv(args.values)}) if args.values else list(SWEEP)
    except ValueError as err:
        raise BadInput(f"--values: {err}") from err
    bad = [v for v in values if v < 0 or v % 4]
    if not values or bad:  # the kernel keeps whole 4 KiB pages
        raise BadInput(f"--values: need multiples of 4 >= 0, got {bad or 'nothing'}")
    if args.duration <= 0 or args.reopen <= 0:
        raise BadInput("--duration and --reopen must be > 0")
    if args.device is not None:
        try:
            mount_of_loop(loop_name(args.device))
        except ValueError as err:
            raise BadInput(str(err)) from err
    agent_command(args.agent_cmd, "loop0", Path("/run/mltune"))  # fails now, not after the sweep
    if args.shuffle is not None:
        random.Random(args.shuffle).shuffle(phases)
    return phases, values


def agent_command(template: str, device: str, state_dir: Path) -> list[str]:
    """Split first, then fill in, so a path with spaces stays one argument."""
    fill = {"python": sys.executable, "device": device, "state_dir": str(state_dir)}
    try:
        return [token.format(**fill) for token in shlex.split(template)]
    except (KeyError, ValueError, IndexError) as err:
        raise BadInput(f"--agent-cmd: {err!r}; placeholders: {{python}} {{device}} "
                       "{state_dir}") from err


# --------------------------------------------------------------------------- running regimes


def backing_disk(device: str) -> str | None:
    """The whole disk under a loop device's backing file ('vda'); None if there is none
    (e.g. a backing file on btrfs or tmpfs, whose st_dev is not a block device)."""
    backing = Path("/sys/block") / device / "loop" / "backing_file"
    try:
        st_dev = os.stat(backing.read_text().strip()).st_dev
    except OSError:  # detached, or the backing file was deleted: nothing to watch
        return None
    node = Path(f"/sys/dev/block/{os.major(st_dev)}:{os.minor(st_dev)}")
    if not node.exists():
        return None
    node = node.resolve()
    return node.parent.name if (node / "partition").exists() else node.name


class OtherIO:
    """Sectors moved on the backing disk minus those moved by our loop device. Another
    workload on the same disk (say, a colleague's benchmark) disturbs a phase's figures."""

    def __init__(self, device: str) -> None:
        self.device, self.disk = device, backing_disk(device)

    def sectors(self) -> int | None:
        if self.disk is None:
            return None
        moved = {}
        for line in Path("/proc/diskstats").read_text().splitlines():
            fields = line.split()  # Documentation/admin-guide/iostats.rst
            if fields[2] in (self.device, self.disk):
                moved[fields[2]] = int(fields[5]) + int(fields[9])  # sectors read + written
        return moved[self.disk] - moved[self.device]


@dataclass(frozen=True)
class Session:
    """What every regime run needs."""

    lab: Lab
    phases: tuple[str, ...]
    args: argparse.Namespace
    progress: Progress
    other_io: OtherIO


def run_phases(s: Session, name: str, values: Sequence[int | None]) -> RegimeRun:
    """Drop caches once, then run the phases back to back, writing each phase's value first."""
    s.lab.drop_caches()
    runs = []
    for phase, value in zip(s.phases, values, strict=True):
        if value is not None:
            s.lab.set_read_ahead_kb(value)
        started, before = time.time(), s.other_io.sectors()
        result = s.lab.run(phase, s.args.duration, s.args.reopen)
        after = s.other_io.sectors()
        other = None if before is None or after is None else (after - before) * 512 / 1e6
        runs.append(PhaseRun(phase, value, started, time.time(), result, other))
        s.progress(f"{name} {phase}")
    return RegimeRun(name, tuple(runs))


class Agent:
    """The agent as a subprocess of ours: started, sampled via /proc, stopped by its pid."""

    def __init__(self, cmd: list[str], state_dir: Path) -> None:
        self.cmd, self.state_dir = cmd, state_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.state_dir / "agent.log").open("wb") as log:
            # Own session: a Ctrl-C on the terminal reaches us, and we stop the agent ourselves.
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # it restores what it changed, then exits
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self) -> str:
        path = self.state_dir / "agent.log"
        lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return " | ".join(lines[-3:]) or "(no output)"

    def cpu_seconds(self) -> float:
        """utime + stime of the agent process (proc(5): fields 14 and 15 of stat)."""
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()  # the name may contain spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float | None:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None  # a zombie has no memory lines


def run_mltune(s: Session) -> tuple[RegimeRun, AgentStats | None]:
    """Run the phases with the agent deciding; the knob starts at the device default."""
    s.lab.set_read_ahead_kb(_need(s.lab.original_read_ahead_kb))
    before = s.lab.get_read_ahead_kb()  # what SIGTERM must put back
    state_dir = Path(tempfile.mkdtemp(prefix="mltune-bench-agent-"))
    agent = Agent(agent_command(s.args.agent_cmd, s.lab.device, state_dir), state_dir)
    try:
        try:
            agent.start()
        except OSError as err:
            return RegimeRun("mltune", (), error=f"cannot start the agent: {err}"), None
        time.sleep(AGENT_WARMUP_S)
        if not agent.alive():
            return RegimeRun("mltune", (), error=f"agent exited: {agent.log_tail()}"), None
        return _measure_agent(s, agent, before)
    finally:
        agent.stop()
        shutil.rmtree(state_dir)


def _measure_agent(s: Session, agent: Agent, before: int) -> tuple[RegimeRun, AgentStats]:
    cpu0, wall0 = agent.cpu_seconds(), time.monotonic()
    regime = run_phases(s, "mltune", [None] * len(s.phases))
    # Read /proc before poll(): until reaped, a dead agent is a zombie whose stat still reads.
    cpu = (agent.cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100
    rss = agent.peak_rss_mb()
    early = not agent.alive()
    exit_code = agent.stop()
    # agent.stop() waited for the exit, so the agent's restore has happened by now.
    audit_path = agent.state_dir / "audit.jsonl"
    if audit_path.exists():
        shutil.copyfile(audit_path, s.args.json.with_suffix(".audit.jsonl"))
    stats = agent_stats(regime, audit_path, cpu, rss, exit_code, early,
                        restored=s.lab.get_read_ahead_kb() == before)
    return regime, stats


def _need(value: int | None) -> int:
    if value is None:
        raise LabError("the lab did not record the device's original read_ahead_kb")
    return value


def read_audit(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The agent's decisions (one JSON object a line) and how many lines were unreadable."""
    if not path.exists():
        return [], 0
    decisions, unreadable = [], 0
    for line in path.read_text().splitlines():
        try:
            decision = json.loads(line)
            float(decision["time"])
            decisions.append(decision)
        except (ValueError, KeyError, TypeError):  # e.g. torn by SIGTERM mid-write
            unreadable += 1
    return decisions, unreadable


def _written(decision: dict[str, Any]) -> int | None:
    """The value written by this decision, None if it wrote nothing or the same value."""
    written, current = decision.get("written"), decision.get("current")
    if written is None or str(written) == str(current):
        return None
    return int(written)


def agent_stats(regime: RegimeRun, audit_path: Path, cpu: float, rss: float | None,
                exit_code: int | None, early: bool, restored: bool) -> AgentStats:
    audit, unreadable = read_audit(audit_path)
    settle, chosen = [], []
    for run in regime.phases:
        inside = [d for d in audit if run.started <= float(d["time"]) < run.ended]
        writes = [(float(d["time"]), v) for d in inside if (v := _written(d)) is not None]
        settle.append(max(t for t, _ in writes) - run.started if writes else 0.0)
        chosen.append(writes[-1][1] if writes else
                      (int(inside[-1]["current"]) if inside else None))
    ticks = [float(d["tick_ms"]) for d in audit if d.get("tick_ms") is not None]
    return AgentStats(
        cpu_percent=cpu, median_tick_ms=statistics.median(ticks) if ticks else None,
        peak_rss_mb=rss, settle_s=tuple(settle), decisions=len(audit),
        changes=sum(_written(d) is not None for d in audit), exit_code=exit_code,
        exited_early=early, restored=restored, chosen=tuple(chosen),
        unreadable_audit_lines=unreadable)


# --------------------------------------------------------------------------- scoring


def best_static(sweep: Sequence[RegimeRun]) -> list[tuple[int, float]]:
    """Per phase position: (value, MB/s) of the best static regime."""
    best = []
    for i in range(len(sweep[0].phases)):
        run = max((r.phases[i] for r in sweep), key=lambda p: p.result.mbps)
        best.append((_need(run.value), run.result.mbps))
    return best


def ratios(regime: RegimeRun, best: Sequence[tuple[int, float]]) -> list[float]:
    """MB/s over the best static MB/s, per phase; empty for a regime that did not run."""
    if not regime.phases:
        return []
    return [p.result.mbps / b if b > 0 else 0.0
            for p, (_, b) in zip(regime.phases, best, strict=True)]


def score(regime: RegimeRun, best: Sequence[tuple[int, float]]) -> float | None:
    """Geometric mean of the per-phase ratios; None if the regime did not run."""
    if not regime.phases:
        return None
    values = ratios(regime, best)
    if min(values) <= 0:
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


# --------------------------------------------------------------------------- the whole run


@dataclass(frozen=True)
class Report:
    phases: tuple[str, ...]
    default_kb: int
    regimes: tuple[RegimeRun, ...]
    best: tuple[tuple[int, float], ...]
    agent: AgentStats | None
    disk: str | None  # backing disk watched for other workloads' I/O


def _fixed(s: Session, name: str, value: int, sweep: Sequence[RegimeRun]) -> RegimeRun:
    """A fixed value: reuse the sweep's measurement when the sweep has it, else run it."""
    for regime in sweep:
        if regime.name == f"static-{value}":
            return RegimeRun(name, regime.phases, same_as=regime.name)
    return run_phases(s, name, [value] * len(s.phases))


def run_all(s: Session, values: Sequence[int]) -> Report:
    default = _need(s.lab.original_read_ahead_kb)
    sweep = [run_phases(s, f"static-{v}", [v] * len(s.phases)) for v in values]
    fixed = [_fixed(s, name, value, sweep) for name, value in
             (("default", default), ("tuned-throughput-performance", TUNED_THROUGHPUT_PERFORMANCE))]
    # The default and 4096 are static values too: when the sweep lacks them, they compete.
    best = best_static([*sweep, *fixed])
    oracle = run_phases(s, "oracle", [v for v, _ in best])
    regimes = [*sweep, *fixed, oracle]
    agent = None
    if not s.args.skip_mltune:
        mltune, agent = run_mltune(s)
        regimes.append(mltune)
    return Report(s.phases, default, tuple(regimes), tuple(best), agent, s.other_io.disk)


def runs_needed(values: Sequence[int], default: int | None, args: argparse.Namespace) -> int:
    """Regime runs, for the progress bar (the default is unknown until the lab is up)."""
    extra = [v for v in (default, TUNED_THROUGHPUT_PERFORMANCE) if v not in values]
    return len(values) + len(extra) + 1 + (0 if args.skip_mltune else 1)


# --------------------------------------------------------------------------- output


def _columns(phases: Sequence[str]) -> list[str]:
    """Column titles; a phase that repeats gets its position appended."""
    return [p if phases.count(p) == 1 else f"{p}#{i + 1}" for i, p in enumerate(phases)]


def _label(regime: RegimeRun, report: Report) -> str:
    if regime.name == "default":
        return f"default ({report.default_kb})"
    if regime.name == "tuned-throughput-performance":
        return f"tuned-throughput-perf ({TUNED_THROUGHPUT_PERFORMANCE})"
    return regime.name


def table(report: Report) -> str:
    """Rows = regimes; per phase 'MB/s (ratio to the best static)'; then the score."""
    titles = _columns(report.phases)
    rows = [["regime", *titles, "score"]]
    for regime in report.regimes:
        if regime.error:
            rows.append([regime.name, *["-"] * len(titles), "failed"])
            continue
        cells = [f"{p.result.mbps:8.1f} ({r:4.2f})"
                 for p, r in zip(regime.phases, ratios(regime, report.best), strict=True)]
        rows.append([_label(regime, report), *cells, f"{score(regime, report.best):.3f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    best = "  ".join(f"{t}={v}" for t, (v, _) in zip(titles, report.best, strict=True))
    return "\n".join([*lines, "", f"best static read_ahead_kb per phase: {best}"])


def agent_summary(report: Report) -> str:
    failed = [r for r in report.regimes if r.name == "mltune" and r.error]
    if failed:
        return f"mltune: not measured: {failed[0].error}"
    a = report.agent
    if a is None:
        return "mltune: skipped"
    titles = _columns(report.phases)
    warning = ["mltune: WARNING: the agent exited before the last phase ended"] * a.exited_early
    settle = "  ".join(f"{t}={s:.1f}" for t, s in zip(titles, a.settle_s, strict=True))
    chosen = "  ".join(f"{t}={c}" for t, c in zip(titles, a.chosen, strict=True))
    return "\n".join([
        *warning,
        f"mltune read_ahead_kb at phase end: {chosen}",
        f"mltune settle time (s) per phase: {settle}  (max {max(a.settle_s, default=0):.1f})",
        f"mltune cost: CPU {_fmt(a.cpu_percent, '.2f')} % of one core, median tick "
        f"{_fmt(a.median_tick_ms, '.1f')} ms, peak RSS {_fmt(a.peak_rss_mb, '.0f')} MB; "
        f"{a.decisions} decisions ({a.unreadable_audit_lines} unreadable), {a.changes} changes, "
        f"exit code {a.exit_code}, "
        f"read_ahead_kb restored: {'yes' if a.restored else 'NO'}",
    ])


def disturbed(report: Report) -> str:
    """A warning naming the phase runs during which someone else used the backing disk."""
    if report.disk is None:
        return "note: backing disk unknown; I/O of other workloads was not checked"
    rates = [(r.name, p.phase, p.other_mb / max(p.ended - p.started, 1e-3))
             for r in report.regimes if r.same_as is None for p in r.phases
             if p.other_mb is not None]
    busy = [(name, phase, mbps) for name, phase, mbps in rates if mbps > OTHER_IO_MBPS]
    if not busy:
        return f"other workloads on {report.disk}: none seen"
    worst = max(busy, key=lambda b: b[2])
    return (f"WARNING: other I/O on {report.disk} during {len(busy)} of {len(rates)} phase runs "
            f"(worst {worst[2]:.0f} MB/s in {worst[0]} {worst[1]}): those figures may be "
            "disturbed; rerun on an idle machine")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def to_json(report: Report, args: argparse.Namespace, device: str) -> dict[str, object]:
    regimes = []
    for regime in report.regimes:
        phases = [{"phase": p.phase, "value": p.value, "started": p.started, "ended": p.ended,
                   **asdict(p.result), "mbps": p.result.mbps, "iops": p.result.iops,
                   "ratio": r, "other_io_mb": p.other_mb}
                  for p, r in zip(regime.phases, ratios(regime, report.best), strict=True)]
        regimes.append({"name": regime.name, "same_as": regime.same_as, "error": regime.error,
                        "score": score(regime, report.best), "phases": phases})
    return {
        "format": "mltune-bench-readahead", "version": 1,
        "host": {"kernel": os.uname().release, "cpus": os.cpu_count()},
        "config": {"phases": list(report.phases), "duration_s": args.duration,
                   "reopen_s": args.reopen, "shuffle": args.shuffle, "device": device,
                   "given_device": args.device, "agent_cmd": args.agent_cmd,
                   "skip_mltune": args.skip_mltune},
        "default_read_ahead_kb": report.default_kb,
        "backing_disk": report.disk,
        "best_static": [{"phase": p, "value": v, "mbps": m}
                        for p, (v, m) in zip(report.phases, report.best, strict=True)],
        "regimes": regimes,
        "agent": asdict(report.agent) if report.agent else None,
    }


# --------------------------------------------------------------------------- main


@contextmanager
def progress_bar(total: int) -> Iterator[Progress]:
    """A bar on stderr, advanced once per phase run."""
    console = Console(stderr=True)
    columns = (TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Bar(*columns, console=console) as bar:
        task = bar.add_task("drop caches, first phase", total=total)
        yield lambda done: bar.update(task, advance=1, description=done)


def measure(args: argparse.Namespace, phases: list[str], values: list[int]) -> tuple[Report, str]:
    with Lab(args.workdir, device=args.device) as lab:
        runs = runs_needed(values, lab.original_read_ahead_kb, args)
        print(f"readahead bench on /dev/{lab.device}: {runs} regime runs x {len(phases)} phases "
              f"x {args.duration:g} s = ~{runs * len(phases) * args.duration / 60:.1f} min",
              file=sys.stderr)
        with progress_bar(runs * len(phases)) as progress:
            session = Session(lab, tuple(phases), args, progress, OtherIO(lab.device))
            return run_all(session, values), lab.device


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the lab, the agent and read_ahead_kb are cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        phases, values = check_args(args)
        if os.geteuid() != 0:
            raise BadInput("run as root: the bench creates loop devices, mounts and cgroups")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        args.json = args.json or RESULTS / f"readahead-{stamp}.json"
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report, device = measure(args, phases, values)
    except BadInput as err:
        print(f"readahead.py: error: {err}", file=sys.stderr)
        return 2
    except LabError as err:
        print(f"readahead.py: lab error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("readahead.py: interrupted; the lab was cleaned up", file=sys.stderr)
        return 130
    args.json.write_text(json.dumps(to_json(report, args, device), indent=1) + "\n")
    print(table(report))
    print(agent_summary(report))
    print(disturbed(report))
    print(f"raw figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
