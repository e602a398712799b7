"""Benchmark read_ahead_kb regimes over a sequence of access-pattern phases (run as root).

Regimes, each run over the same phases on one lab (loop device, 256 MiB memory cgroup):

* ``static-N``: read_ahead_kb fixed at N for every phase (the sweep);
* ``default``: the device's own value, read before anything was touched;
* ``tuned-throughput-performance``: 4096, what tuned's profile of that name sets;
* ``oracle``: per phase, the static value (sweep, default, 4096) with the best median figure
  measured so far, written at phase start;
* ``oracle-late`` (with ``--late-oracle S``): the oracle's values, each written S seconds
  after its phase started, the phase before's value in place until then (the first phase
  starts at the device default, as mltune's does). It is what a tuner that always picks the
  best value but must first see the phase could score: files opened before a write keep
  their readahead (``file_ra_state_init`` at open), so it pays what mltune pays for reacting;
* ``mltune``: the agent, started 3 s before the first phase and stopped with SIGTERM after
  the last one.

The page cache is dropped before each regime, never between phases: a real workload keeps its
cache when its access pattern changes. ``--reclaim`` empties the lab's memory cgroup between
phases too, for every regime alike: a phase then does not pay for what the one before left.
Streams after mmap random reads at 4 KiB (which leave the cgroup full of hot mapped pages)
read 0.7x what they read after the same reads at 2048 on this host (bench/carryover.py), and
only the adaptive regimes (the oracles, mltune) run mmap random reads at 4 before a stream.
The default and 4096 reuse the sweep's measurement when the sweep has that value.

``--repeat N`` runs every regime N times, interleaved: round 1 runs them all in the order
above, round k in that order rotated by (k-1)/N of its length, so a slow drift of the host
hits every regime alike (one run per regime cannot be trusted on a shared VM: static figures
move by up to 2x between runs). 3 is the recommended minimum. Reported per regime and phase:
median MB/s and its min-max over the rounds. Score = geometric mean over phases of (median
MB/s / best static median MB/s for that phase); beside it, the median and range of per-round
scores, each round against its own statics. With N = 1 both are the single run's score.
Aggregation lives in ``bench/aggregate.py``; the JSON has every raw round and the aggregates,
and is rewritten after each round, so an interrupted run keeps its complete rounds.

    python bench/readahead.py --duration 8
    python bench/readahead.py --repeat 3 --duration 15
    python bench/readahead.py --skip-mltune --duration 2 --values 4,1024 --phases seq,mmap-rand
"""

from __future__ import annotations

import argparse
import json
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

# bench/ is the script's directory, hence first on sys.path: its helper imports as a module.
from aggregate import (
    AgentSummary,
    Spread,
    Summary,
    best_static,
    oracle_values,
    ratios,
    round_order,
    score,
    summarise,
    summarise_agent,
)
from mltune.lab import (
    BENCH_PHASES,
    PATTERNS,
    FioResult,
    Lab,
    LabError,
    loop_name,
    mount_of_loop,
)
from mltune.statefile import write_json
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.table import Table
from rich.text import Text

SWEEP = (4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
# tuned's throughput-performance profile: [disk] readahead=>4096 (KiB; ">" = only ever raise).
TUNED_THROUGHPUT_PERFORMANCE = 4096
AGENT_WARMUP_S = 3.0
# For the time estimate only: fio's start-up per phase, cache drop and fio re-read per regime.
FIO_START_S = 0.3
REGIME_OVERHEAD_S = 1.0
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
    # read_ahead_kb written at phase start (oracle-late: late_oracle_s into it); None when
    # the agent decides
    value: int | None
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

    def figures(self) -> list[float] | None:
        """MB/s per phase; None if the regime did not run (the agent failed to start)."""
        return [p.result.mbps for p in self.phases] if self.phases else None


@dataclass(frozen=True)
class Regime:
    """One regime of the plan, before it runs."""

    name: str
    value: int | None  # read_ahead_kb held throughout; None for the oracle and mltune
    same_as: str | None = None  # an earlier regime of the same value: reuse its measurement


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
    median_tick_cpu_ms: float | None = None  # CPU time per tick (audit "tick_cpu_ms")
    early_ticks: int = 0  # ticks run early because the workload changed (audit "trigger")
    unreadable_audit_lines: int = 0


@dataclass(frozen=True)
class Round:
    """Every regime run once; ``regimes`` in plan order, ``order`` as they actually ran."""

    index: int  # 1-based
    order: tuple[str, ...]  # the measured regimes (not those reusing another's figures)
    regimes: tuple[RegimeRun, ...]
    agent: AgentStats | None


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
    p.add_argument("--shuffle", type=int, metavar="SEED",
                   help="random phase order (the same in every round)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="rounds of all regimes, interleaved; report medians and spread "
                        "(default: %(default)s; 3 or more to tell effects from host noise)")
    p.add_argument("--values", help=f"read_ahead_kb sweep (default: {','.join(map(str, SWEEP))})")
    p.add_argument("--json", type=Path, help="raw results (default: bench/results/...)")
    p.add_argument("--device", help="existing loop device with a mounted filesystem")
    p.add_argument("--workdir", type=Path, default=Path("/var/tmp"),
                   help="where the lab puts its backing file and job files")
    p.add_argument("--skip-mltune", action="store_true", help="do not run the agent")
    p.add_argument("--agent-cmd", default=DEFAULT_AGENT_CMD,
                   help="agent command; {python} {device} {state_dir} are filled in")
    p.add_argument("--reclaim", action="store_true",
                   help="empty the memory cgroup between phases (every regime): no phase "
                        "pays for the page cache the one before left")
    p.add_argument("--late-oracle", type=float, metavar="S",
                   help="also run the oracle's values written S seconds into each phase "
                        "(the cost of reacting; mltune writes 0.3-0.5 s in)")
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
    if args.late_oracle is not None and not 0 < args.late_oracle < args.duration:
        raise BadInput(f"--late-oracle: need 0 < S < --duration, got {args.late_oracle}")
    if args.repeat < 1:
        raise BadInput(f"--repeat: need at least 1 round, got {args.repeat}")
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


def run_phases(s: Session, name: str, values: Sequence[int | None], tag: str = "",
               late: float = 0.0) -> RegimeRun:
    """Drop caches once, then run the phases back to back, writing each phase's value first,
    or ``late`` seconds after the phase's fio started (the device default before the first).
    ``tag`` prefixes the progress line (the round)."""
    s.lab.drop_caches()
    if late:
        s.lab.set_read_ahead_kb(_need(s.lab.original_read_ahead_kb))
    runs = []
    for i, (phase, value) in enumerate(zip(s.phases, values, strict=True)):
        if s.args.reclaim and i:
            s.lab.reclaim()
        if value is not None and not late:
            s.lab.set_read_ahead_kb(value)
        started, before = time.time(), s.other_io.sectors()
        run = s.lab.start(phase, s.args.duration, s.args.reopen)
        try:
            if value is not None and late:
                time.sleep(late)
                s.lab.set_read_ahead_kb(value)
            result = run.wait()
        finally:
            run.stop()
        after = s.other_io.sectors()
        other = None if before is None or after is None else (after - before) * 512 / 1e6
        runs.append(PhaseRun(phase, value, started, time.time(), result, other))
        s.progress(f"{tag}{name} {phase}")
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


def run_mltune(s: Session, audit_copy: Path, tag: str = "") -> tuple[RegimeRun, AgentStats | None]:
    """Run the phases with the agent deciding; the knob starts at the device default.
    The agent's audit log is kept as ``audit_copy``."""
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
        return _measure_agent(s, agent, before, audit_copy, tag)
    finally:
        agent.stop()
        shutil.rmtree(state_dir)


def _measure_agent(s: Session, agent: Agent, before: int, audit_copy: Path,
                   tag: str) -> tuple[RegimeRun, AgentStats]:
    cpu0, wall0 = agent.cpu_seconds(), time.monotonic()
    regime = run_phases(s, "mltune", [None] * len(s.phases), tag)
    # Read /proc before poll(): until reaped, a dead agent is a zombie whose stat still reads.
    cpu = (agent.cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100
    rss = agent.peak_rss_mb()
    early = not agent.alive()
    exit_code = agent.stop()
    # agent.stop() waited for the exit, so the agent's restore has happened by now.
    audit_path = agent.state_dir / "audit.jsonl"
    if audit_path.exists():
        shutil.copyfile(audit_path, audit_copy)
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
    cpu_ticks = [float(d["tick_cpu_ms"]) for d in audit if d.get("tick_cpu_ms") is not None]
    # One line per target and tick: count the ticks, by their time.
    early_ticks = len({d["time"] for d in audit if d.get("trigger")})
    return AgentStats(
        cpu_percent=cpu, median_tick_ms=statistics.median(ticks) if ticks else None,
        peak_rss_mb=rss, settle_s=tuple(settle), decisions=len(audit),
        changes=sum(_written(d) is not None for d in audit), exit_code=exit_code,
        exited_early=early, restored=restored, chosen=tuple(chosen),
        unreadable_audit_lines=unreadable,
        median_tick_cpu_ms=statistics.median(cpu_ticks) if cpu_ticks else None,
        early_ticks=early_ticks)


# --------------------------------------------------------------------------- the whole run


@dataclass(frozen=True)
class Report:
    phases: tuple[str, ...]
    default_kb: int
    plan: tuple[Regime, ...]
    rounds: tuple[Round, ...]  # the complete ones; fewer than asked after an interrupt
    disk: str | None  # backing disk watched for other workloads' I/O
    device: str


def plan_regimes(values: Sequence[int], default: int, skip_mltune: bool,
                 late_oracle: bool = False) -> tuple[Regime, ...]:
    """Regimes in table order. The default and 4096 are static values too: when an earlier
    regime has the same value they reuse its measurement, else they are measured and compete
    for best static."""
    regimes = [Regime(f"static-{v}", v) for v in values]
    for name, value in (("default", default),
                        ("tuned-throughput-performance", TUNED_THROUGHPUT_PERFORMANCE)):
        twin = next((r.name for r in regimes if r.value == value and r.same_as is None), None)
        regimes.append(Regime(name, value, same_as=twin))
    regimes.append(Regime("oracle", None))
    if late_oracle:
        regimes.append(Regime("oracle-late", None))
    if not skip_mltune:
        regimes.append(Regime("mltune", None))
    return tuple(regimes)


def static_history(plan: Sequence[Regime],
                   rounds: Sequence[dict[str, RegimeRun]]) -> dict[int, list[list[float]]]:
    """read_ahead_kb -> its per-phase MB/s in every measured run among ``rounds``."""
    history: dict[int, list[list[float]]] = {}
    for runs in rounds:
        for regime in plan:
            run = runs.get(regime.name)
            figures = run.figures() if run is not None else None
            if regime.value is not None and regime.same_as is None and figures is not None:
                history.setdefault(regime.value, []).append(figures)
    return history


def audit_copy(json_path: Path, index: int, rounds: int) -> Path:
    """Where the agent's audit log of round ``index`` (0-based) is kept, next to the JSON."""
    return json_path.with_suffix(".audit.jsonl" if rounds == 1 else f".r{index + 1}.audit.jsonl")


def run_round(s: Session, plan: Sequence[Regime], index: int, done: Sequence[Round]) -> Round:
    """Round ``index`` (0-based): every measured regime once, in this round's rotated order.
    The oracle picks from every static run so far, this round's included."""
    order = round_order([r.name for r in plan if r.same_as is None], index, s.args.repeat)
    tag = f"r{index + 1} " if s.args.repeat > 1 else ""
    by_name = {r.name: r for r in plan}
    ran: dict[str, RegimeRun] = {}
    agent = None
    for name in order:
        value = by_name[name].value
        if value is not None:
            ran[name] = run_phases(s, name, [value] * len(s.phases), tag)
        elif name in ("oracle", "oracle-late"):
            history = [*({r.name: r for r in d.regimes} for d in done), ran]
            ran[name] = run_phases(s, name, oracle_values(static_history(plan, history)), tag,
                                   s.args.late_oracle if name == "oracle-late" else 0.0)
        elif name == "mltune":
            ran[name], agent = run_mltune(s, audit_copy(s.args.json, index, s.args.repeat), tag)
        else:
            raise AssertionError(f"regime {name} has no value and no runner")
    runs = tuple(RegimeRun(r.name, ran[r.same_as].phases, same_as=r.same_as) if r.same_as
                 else ran[r.name] for r in plan)
    return Round(index + 1, tuple(order), runs, agent)


def run_all(s: Session, plan: tuple[Regime, ...],
            on_round: Callable[[Report], None]) -> Report:
    """``--repeat`` rounds; ``on_round`` gets the report so far after each complete round."""
    default = _need(s.lab.original_read_ahead_kb)
    rounds: list[Round] = []
    report = Report(s.phases, default, plan, (), s.other_io.disk, s.lab.device)
    for index in range(s.args.repeat):
        rounds.append(run_round(s, plan, index, rounds))
        report = Report(s.phases, default, plan, tuple(rounds), s.other_io.disk, s.lab.device)
        on_round(report)
    return report


def summary(report: Report) -> Summary:
    regimes = {r.name: [rnd.regimes[i].figures() for rnd in report.rounds]
               for i, r in enumerate(report.plan)}
    return summarise(regimes, {r.name: r.value for r in report.plan if r.value is not None})


def agent_summary(report: Report) -> AgentSummary | None:
    stats = [r.agent for r in report.rounds if r.agent is not None]
    return summarise_agent([a.settle_s for a in stats], [a.cpu_percent for a in stats],
                           [a.median_tick_ms for a in stats], [a.peak_rss_mb for a in stats],
                           [a.median_tick_cpu_ms for a in stats], [a.early_ticks for a in stats])


def round_best(report: Report, rnd: Round) -> tuple[tuple[int, float], ...]:
    """The best static value and MB/s per phase in one round."""
    return best_static({r.value: f for r, run in zip(report.plan, rnd.regimes, strict=True)
                        if r.value is not None and (f := run.figures()) is not None})


def round_score(report: Report, rnd: Round, name: str) -> float | None:
    run = next(r for r in rnd.regimes if r.name == name)
    figures = run.figures()
    return None if figures is None else score(figures, round_best(report, rnd))


# --------------------------------------------------------------------------- output


def _columns(phases: Sequence[str]) -> list[str]:
    """Column titles; a phase that repeats gets its position appended."""
    return [p if phases.count(p) == 1 else f"{p}#{i + 1}" for i, p in enumerate(phases)]


def _label(name: str, report: Report) -> str:
    if name == "default":
        return f"default ({report.default_kb})"
    if name == "tuned-throughput-performance":
        return f"tuned-throughput-perf ({TUNED_THROUGHPUT_PERFORMANCE})"
    return name


def _mbps(value: float) -> str:
    """Whole MB/s, but a decimal below 100: mmap random reads run at 1-60 MB/s."""
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _range(s: Spread, spec: str = "") -> str:
    low, high = (_mbps(s.low), _mbps(s.high)) if not spec else (format(s.low, spec),
                                                                  format(s.high, spec))
    return f"{low}–{high}"


def table(report: Report, summ: Summary) -> Table:
    """Rows = regimes; per phase 'median MB/s (ratio to the best static median)' and, with
    repeats, the min-max below it; then the score of medians and the per-round scores."""
    n = len(report.rounds)
    repeated = n > 1
    title = (f"median MB/s of {n} rounds (ratio to the best static median); below: min–max"
             if repeated else "MB/s (ratio to the best static)")
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    t.add_column("regime")
    for col in _columns(report.phases):
        t.add_column(col, justify="right")
    t.add_column("score", justify="right")
    if repeated:
        t.add_column("per round", justify="right")
    for regime, rs in zip(report.plan, summ.regimes, strict=True):
        label = _label(regime.name, report)
        ran = rs.round_score.n if rs.round_score else 0
        if ran < n:
            label += f" ({ran} of {n} rounds)"
        style = "bold" if regime.name in ("oracle", "oracle-late", "mltune") else ""
        if rs.score is None:
            t.add_row(label, *["-"] * len(report.phases), "failed", *["-"] * repeated)
            continue
        cells = []
        for sp, ratio in zip(rs.phases, rs.ratios, strict=True):
            cell = Text(f"{_mbps(sp.median)} ({ratio:.2f})")
            if repeated:
                cell.append(f"\n{_range(sp)}", style="dim")
            cells.append(cell)
        extra = []
        if repeated and rs.round_score is not None:
            extra = [Text.assemble(f"{rs.round_score.median:.3f}",
                                   (f"\n{_range(rs.round_score, '.3f')}", "dim"))]
        t.add_row(label, *cells, Text(f"{rs.score:.3f}", style=style), *extra)
    return t


def best_line(report: Report, summ: Summary) -> str:
    kind = "by median, the oracle's picks" if len(report.rounds) > 1 else "the oracle's picks"
    best = "  ".join(f"{t}={v}" for t, (v, _) in
                     zip(_columns(report.phases), summ.best, strict=True))
    return f"best static read_ahead_kb per phase ({kind}): {best}"


def _agent_round(report: Report, rnd: Round) -> tuple[str, str, str, str, str, str]:
    """mltune's cells of one round: settle max, CPU, tick, RSS, restored, where it ran."""
    a = rnd.agent
    position = (f"{rnd.order.index('mltune') + 1} of {len(rnd.order)}"
                if "mltune" in rnd.order else "-")
    if a is None:
        return "-", "-", "-", "-", "-", position
    return (f"{max(a.settle_s, default=0):.1f}", _fmt(a.cpu_percent, ".2f"),
            _fmt(a.median_tick_ms, ".1f"), _fmt(a.peak_rss_mb, ".0f"),
            "yes" if a.restored else "NO", position)


def rounds_table(report: Report) -> Table:
    """One row per round: scores against that round's statics, mltune's settle and cost,
    and the worst foreign I/O on the backing disk."""
    agent = any(r.name == "mltune" for r in report.plan)
    late = any(r.name == "oracle-late" for r in report.plan)
    t = Table(title="per round: scores against that round's own statics", box=box.SIMPLE_HEAD,
              title_justify="left", pad_edge=False)
    for col in ("round", "best single value", "oracle", *(("oracle-late",) if late else ()), *(
            ("mltune", "mltune ran", "settle max s", "CPU %", "tick ms", "RSS MB", "restored")
            if agent else ()), "foreign I/O MB/s"):
        t.add_column(col, justify="left" if col in ("round", "best single value") else "right")
    statics = [r.name for r in report.plan if r.value is not None]
    for rnd in report.rounds:
        scores = {name: round_score(report, rnd, name) for name in statics}
        single = max(scores, key=lambda name: scores[name] or 0.0)
        row = [str(rnd.index), f"{_label(single, report)} {_fmt(scores[single], '.3f')}",
               _fmt(round_score(report, rnd, "oracle"), ".3f")]
        if late:
            row.append(_fmt(round_score(report, rnd, "oracle-late"), ".3f"))
        if agent:
            settle, cpu, tick, rss, restored, position = _agent_round(report, rnd)
            row += [_fmt(round_score(report, rnd, "mltune"), ".3f"), position, settle, cpu,
                    tick, rss, restored]
        rates = [rate for _, _, rate in _other_rates(rnd)]
        row.append(_fmt(max(rates), ".1f") if rates else "n/a")
        t.add_row(*row)
    return t


def agent_lines(report: Report) -> list[str]:
    """mltune's decisions, settle time and cost: as measured with one round; with several,
    the worst settle time and the median (min-max) of each cost."""
    if not any(r.name == "mltune" for r in report.plan):
        return ["mltune: skipped"]
    titles = _columns(report.phases)
    lines = []
    for rnd in report.rounds:
        run = next(r for r in rnd.regimes if r.name == "mltune")
        if run.error:
            lines.append(f"mltune: not measured in round {rnd.index}: {run.error}")
        elif rnd.agent is not None and rnd.agent.exited_early:
            lines.append(f"mltune: WARNING: in round {rnd.index} the agent exited before the "
                         "last phase ended")
    stats = [r.agent for r in report.rounds if r.agent is not None]
    agg = agent_summary(report)
    if agg is None:
        return lines
    if len(report.rounds) == 1:
        a = stats[0]
        settle = "  ".join(f"{t}={s:.1f}" for t, s in zip(titles, a.settle_s, strict=True))
        chosen = "  ".join(f"{t}={c}" for t, c in zip(titles, a.chosen, strict=True))
        return [
            *lines,
            f"mltune read_ahead_kb at phase end: {chosen}",
            f"mltune settle time (s) per phase: {settle}  (max {agg.settle_max_s:.1f})",
            f"mltune cost: CPU {_fmt(a.cpu_percent, '.2f')} % of one core, median tick "
            f"{_fmt(a.median_tick_ms, '.1f')} ms (CPU {_fmt(a.median_tick_cpu_ms, '.2f')} ms), "
            f"peak RSS {_fmt(a.peak_rss_mb, '.0f')} MB; "
            f"{a.decisions} decisions ({a.unreadable_audit_lines} unreadable), "
            f"{a.early_ticks} early ticks, "
            f"{a.changes} changes, exit code {a.exit_code}, "
            f"read_ahead_kb restored: {'yes' if a.restored else 'NO'}",
        ]
    chosen = "  ".join(f"{t}={'/'.join(str(a.chosen[i]) for a in stats)}"
                       for i, t in enumerate(titles))
    settle = "  ".join(f"{t}={s:.1f}"
                       for t, s in zip(titles, agg.settle_by_phase_max_s, strict=True))
    not_restored = [str(r.index) for r in report.rounds
                    if r.agent is not None and not r.agent.restored]
    return [
        *lines,
        f"mltune read_ahead_kb at phase end, round by round: {chosen}",
        f"mltune settle time (s) per phase, worst of {agg.rounds} rounds: {settle}  "
        f"(max {agg.settle_max_s:.1f})",
        f"mltune cost, median (min–max) of {agg.rounds} rounds: "
        f"CPU {_spread(agg.cpu_percent, '.2f', '% of one core')}, "
        f"median tick {_spread(agg.median_tick_ms, '.1f', 'ms')} "
        f"(CPU {_spread(agg.median_tick_cpu_ms, '.2f', 'ms')}), "
        f"peak RSS {_spread(agg.peak_rss_mb, '.0f', 'MB')}; "
        f"{agg.early_ticks} early ticks, "
        f"{sum(a.decisions for a in stats)} decisions "
        f"({sum(a.unreadable_audit_lines for a in stats)} unreadable), "
        f"{sum(a.changes for a in stats)} changes, "
        f"exit codes {'/'.join(str(a.exit_code) for a in stats)}, read_ahead_kb restored: "
        + (f"NO in round {', '.join(not_restored)}" if not_restored else "yes, every round"),
    ]


def _other_rates(rnd: Round) -> list[tuple[str, str, float]]:
    """(regime, phase, MB/s of foreign I/O) for every phase run measured in this round."""
    return [(r.name, p.phase, p.other_mb / max(p.ended - p.started, 1e-3))
            for r in rnd.regimes if r.same_as is None for p in r.phases
            if p.other_mb is not None]


def disturbed(report: Report) -> str:
    """A warning naming the phase runs during which someone else used the backing disk."""
    if report.disk is None:
        return "note: backing disk unknown; I/O of other workloads was not checked"
    rates = [(rnd.index, *rate) for rnd in report.rounds for rate in _other_rates(rnd)]
    busy = [rate for rate in rates if rate[3] > OTHER_IO_MBPS]
    if not busy:
        return f"other workloads on {report.disk}: none seen"
    worst = max(busy, key=lambda b: b[3])
    where = f"round {worst[0]} " if len(report.rounds) > 1 else ""
    return (f"WARNING: other I/O on {report.disk} during {len(busy)} of {len(rates)} phase runs "
            f"(worst {worst[3]:.0f} MB/s in {where}{worst[1]} {worst[2]}): those figures may be "
            "disturbed; rerun on an idle machine")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _spread(s: Spread | None, spec: str, unit: str) -> str:
    if s is None:
        return "n/a"
    return f"{s.median:{spec}} {unit} ({s.low:{spec}}–{s.high:{spec}})"


def _spread_json(s: Spread | None) -> dict[str, float] | None:
    return None if s is None else {"median": s.median, "min": s.low, "max": s.high, "n": s.n}


def to_json(report: Report, args: argparse.Namespace, values: Sequence[int]) -> dict[str, Any]:
    """Every raw round (each regime's phases, its score against that round's statics, the
    agent's stats) and the aggregates over the rounds."""
    rounds = []
    for rnd in report.rounds:
        best = round_best(report, rnd)
        regimes = []
        for regime in rnd.regimes:
            figures = regime.figures()
            rel = ratios(figures, best) if figures is not None else ()
            phases = [{"phase": p.phase, "value": p.value, "started": p.started,
                       "ended": p.ended, **asdict(p.result), "mbps": p.result.mbps,
                       "iops": p.result.iops, "ratio": r, "other_io_mb": p.other_mb}
                      for p, r in zip(regime.phases, rel, strict=True)]
            regimes.append({"name": regime.name, "same_as": regime.same_as,
                            "error": regime.error,
                            "score": score(figures, best) if figures is not None else None,
                            "phases": phases})
        rounds.append({
            "round": rnd.index, "order": list(rnd.order),
            "best_static": [{"phase": p, "value": v, "mbps": m}
                            for p, (v, m) in zip(report.phases, best, strict=True)],
            "regimes": regimes,
            "agent": asdict(rnd.agent) if rnd.agent else None,
        })
    summ = summary(report) if report.rounds else None
    agg = agent_summary(report)
    return {
        "format": "mltune-bench-readahead", "version": 2,
        "host": {"kernel": os.uname().release, "cpus": os.cpu_count()},
        "config": {"phases": list(report.phases), "duration_s": args.duration,
                   "reopen_s": args.reopen, "shuffle": args.shuffle, "values": list(values),
                   "repeat": args.repeat, "device": report.device,
                   "given_device": args.device, "agent_cmd": args.agent_cmd,
                   "skip_mltune": args.skip_mltune, "reclaim": args.reclaim,
                   "late_oracle_s": args.late_oracle},
        "default_read_ahead_kb": report.default_kb,
        "backing_disk": report.disk,
        "rounds_complete": len(report.rounds),
        "rounds": rounds,
        "summary": None if summ is None else {
            "best_static": [{"phase": p, "value": v, "median_mbps": m}
                            for p, (v, m) in zip(report.phases, summ.best, strict=True)],
            "regimes": [{
                "name": rs.name, "value": regime.value, "same_as": regime.same_as,
                "score_of_medians": rs.score,
                "round_scores": list(rs.round_scores),
                "round_score": _spread_json(rs.round_score),
                "phases": [{"phase": p, "median_mbps": sp.median, "min_mbps": sp.low,
                            "max_mbps": sp.high, "n": sp.n, "ratio": r}
                           for p, sp, r in zip(report.phases, rs.phases, rs.ratios,
                                               strict=True)],
            } for regime, rs in zip(report.plan, summ.regimes, strict=True)],
            "agent": None if agg is None else {
                "rounds": agg.rounds, "settle_max_s": agg.settle_max_s,
                "settle_by_phase_max_s": list(agg.settle_by_phase_max_s),
                "cpu_percent": _spread_json(agg.cpu_percent),
                "median_tick_ms": _spread_json(agg.median_tick_ms),
                "median_tick_cpu_ms": _spread_json(agg.median_tick_cpu_ms),
                "early_ticks": agg.early_ticks,
                "peak_rss_mb": _spread_json(agg.peak_rss_mb),
                "restored_every_round": all(r.agent.restored for r in report.rounds
                                            if r.agent is not None),
            },
        },
    }


def print_report(report: Report) -> None:
    summ = summary(report)
    # Not a terminal (a file, a pipe): rich would wrap at 80 columns; the table is wider.
    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    console.print(table(report, summ))
    print(best_line(report, summ))
    if len(report.rounds) > 1:
        console.print(rounds_table(report))
    for line in agent_lines(report):
        print(line)
    print(disturbed(report))


# --------------------------------------------------------------------------- main


@contextmanager
def progress_bar(total: int) -> Iterator[Progress]:
    """A bar on stderr, advanced once per phase run."""
    console = Console(stderr=True)
    columns = (TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Bar(*columns, console=console) as bar:
        task = bar.add_task("drop caches, first phase", total=total)
        yield lambda done: bar.update(task, advance=1, description=done)


def estimate_s(measured: int, phases: int, args: argparse.Namespace) -> float:
    """Expected wall time: the phases, plus per regime run the cache drop and fio start-ups,
    plus the agent's warm-up."""
    per_round = measured * (phases * (args.duration + FIO_START_S) + REGIME_OVERHEAD_S)
    agent = 0.0 if args.skip_mltune else AGENT_WARMUP_S
    return args.repeat * (per_round + agent)


def measure(args: argparse.Namespace, phases: list[str], values: list[int],
            on_round: Callable[[Report], None]) -> Report:
    with Lab(args.workdir, device=args.device) as lab:
        plan = plan_regimes(values, _need(lab.original_read_ahead_kb), args.skip_mltune,
                            args.late_oracle is not None)
        measured = sum(r.same_as is None for r in plan)
        rounds = f"{args.repeat} rounds x " if args.repeat > 1 else ""
        print(f"readahead bench on /dev/{lab.device}: {rounds}{measured} regime runs x "
              f"{len(phases)} phases x {args.duration:g} s"
              f"{' (cgroup emptied between phases)' if args.reclaim else ''} = "
              f"~{estimate_s(measured, len(phases), args) / 60:.1f} min", file=sys.stderr)
        with progress_bar(args.repeat * measured * len(phases)) as progress:
            session = Session(lab, tuple(phases), args, progress, OtherIO(lab.device))
            return run_all(session, plan, on_round)


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the lab, the agent and read_ahead_kb are cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)
    saved: list[int] = []  # rounds in the JSON file so far

    def save(report: Report) -> None:
        # After every round, so an interrupted run keeps what it measured.
        write_json(args.json, to_json(report, args, values))
        saved.append(len(report.rounds))

    try:
        phases, values = check_args(args)
        if os.geteuid() != 0:
            raise BadInput("run as root: the bench creates loop devices, mounts and cgroups")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        args.json = args.json or RESULTS / f"readahead-{stamp}.json"
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = measure(args, phases, values, save)
    except BadInput as err:
        print(f"readahead.py: error: {err}", file=sys.stderr)
        return 2
    except LabError as err:
        print(f"readahead.py: lab error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        kept = f"; {saved[-1]} complete round(s) in {args.json}" if saved else ""
        print(f"readahead.py: interrupted; the lab was cleaned up{kept}", file=sys.stderr)
        return 130
    print_report(report)
    print(f"raw figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
