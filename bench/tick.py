"""Where the agent's tick goes, on the real kernel (run as root).

Builds a lab (loop device, ext4, dataset, memory cgroup; see ``mltune.lab``), runs one fio
pattern at a time and, while it runs, the readahead agent at ``--interval``:

* in process (default): the shipped agent, with timers wrapped around its stages, prints the
  median and p90 per stage (ms): switching the events, draining their buffers, decoding,
  features, /proc and /sys reads, model, policies, the audit line's write (outside the
  tick), and ``tick_ms`` as the agent itself computes it (sampling window excluded);
* ``--cli``: ``mltune run`` as a separate process, as a user runs it; reports ``tick_ms``
  from its audit log, its CPU (% of one core, from /proc/<pid>/stat) and peak RSS (VmHWM).
  ``--baseline REV`` runs the agent of that git revision right after each run of this one,
  on the same lab and workload, and prints the ratio of the medians.

The machine has 2 cores shared with other work: repeat (``--repeat``) and compare medians.

    python bench/tick.py --ticks 20
    python bench/tick.py --ticks 30 --cli --patterns seq,mmap-rand --repeat 3 --baseline 0d5b3aa
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mltune import cli as mcli
from mltune import config as configmod
from mltune import kept, loop, model, tracing

try:  # absent before the perf source: the same script still measures older revisions
    from mltune import perf, tracefs
    SOURCES: list[Any] = [perf.PerfSource, tracefs.TracefsSource]
    DECODERS: list[tuple[Any, str]] = [(perf.PerfSource, "_decode"), (perf.PerfSource, "decode"),
                                       (tracefs, "decode")]
except ImportError:
    SOURCES, DECODERS = [], []
try:  # the audit log kept open, since -v37
    from mltune.audit import AuditLog
    AUDIT: list[tuple[Any, str]] = [(AuditLog, "write")]
except ImportError:
    AUDIT = []
from mltune.drivers import readahead
from mltune.lab import Lab
from mltune.registry import make_driver
from mltune.sysfs import Root

# Stage → (owner, attribute) whose calls are timed. An attribute missing in this version of
# the code is skipped, so the same script measures before and after a change.
STAGES: dict[str, list[tuple[Any, str]]] = {
    "toggle": [(tracing.TraceSampler, "_switch"), *[(s, "switch") for s in SOURCES]],
    "drain": [(tracing.TraceSampler, "_drain"), *[(s, "drain") for s in SOURCES]],
    "decode": [(tracing, "decode"), (tracing, "parse"), *DECODERS],
    "summarize": [(tracing, "summarize")],
    "native": [(tracing, "summarize_records")],  # decode + summarize in mltune._fasttrace
    "features": [(readahead, "_trace_features"), (readahead, "_disk_features")],
    "read proc": [(kept.KeptFile, "read")],
    "read sys": [(readahead, "read_once"),
                 *([(kept.KeptAttr, "read")] if hasattr(kept, "KeptAttr") else [])],
    "model": [(model.Model, "score")],
    "policies": [(loop.Agent, "_check")],
    "audit": [(loop.Agent, "_audit"), *AUDIT],
    # Containers: shown, not subtracted from "other".
    "[observe]": [(readahead.ReadaheadDriver, "observe")],
    "[decide]": [(loop.Agent, "_decide")],
    "[sample]": [(readahead.ReadaheadDriver, "_sample")],
    "[system]": [(readahead.ReadaheadDriver, "_system_features")],
    "[diskstats]": [(readahead, "parse_diskstats"),  # before per-target stat files
                    (readahead.ReadaheadDriver, "_disk_stats")],
    "[busy]": [(tracing.TraceSampler, "_busy")],
}
# Agent.tick measures tick_ms before writing the audit line (and before `-v37`, before
# building it: "audit" timed both then).
OUTSIDE_TICK = {"audit"}


class Timers:
    """Sum of the time spent in each stage during the current tick."""

    def __init__(self) -> None:
        self.now: dict[str, float] = defaultdict(float)
        self.ticks: list[dict[str, float]] = []

    def add(self, stage: str, seconds: float) -> None:
        self.now[stage] += seconds

    def end_tick(self, tick_ms: float, slept: float) -> None:
        row = {k: v * 1000 for k, v in self.now.items()}
        row["tick_ms"] = tick_ms
        row["window"] = slept * 1000
        self.ticks.append(row)
        self.now = defaultdict(float)


def _timed(fn: Callable[..., Any], stage: str | Callable[..., str], timers: Timers) \
        -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            name = stage(*args, **kw) if callable(stage) else stage
            timers.add(name, time.perf_counter() - t0)
    return wrapper


def _root_stage(kind: str) -> Callable[..., str]:
    def stage(self: Root, rel: str, *args: Any, **kw: Any) -> str:
        if rel.endswith("tracing_on"):
            return "toggle"
        top = rel.split("/", 1)[0]
        return f"{kind} {top}"  # "read proc", "read sys", "write sys"
    return stage


@contextmanager
def instrumented(timers: Timers) -> Iterator[None]:
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        # Collections are part of the tick; they show as their own stage (and inside
        # whichever stage triggered them).
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            timers.add(f"gc{info['generation']}", time.perf_counter() - started.pop())

    gc.callbacks.append(on_gc)
    saved: list[tuple[Any, str, Any]] = []
    targets = [(owner, attr, stage) for stage, pairs in STAGES.items() for owner, attr in pairs]
    targets += [(Root, "read", _root_stage("read")), (Root, "write", _root_stage("write"))]
    for owner, attr, stage in targets:
        fn = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
        if fn is None:
            continue
        saved.append((owner, attr, fn))
        setattr(owner, attr, _timed(fn, stage, timers))
    try:
        yield
    finally:
        gc.callbacks.remove(on_gc)
        for owner, attr, fn in reversed(saved):
            setattr(owner, attr, fn)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_process(lab: Lab, pattern: str, ticks: int, interval: float, state: Path) -> list[dict]:
    cfg = configmod.load(None)
    drv = make_driver("readahead", Root("/"), **mcli._driver_opts(cfg, "readahead",
                                                                  [lab.device]))
    mdl, note = mcli._load_model("readahead", drv, None)
    assert mdl is not None, note
    agent = mcli._make_agent(drv, mdl, note, drv.discover(), cfg, "readahead", False, state,
                             Root("/"))
    timers = Timers()
    run = lab.start(pattern, ticks * interval + 4)
    try:
        time.sleep(1.0)  # fio start-up
        with instrumented(timers):
            next_at = time.monotonic()
            for _ in range(ticks + 1):  # the first tick has no previous /proc sample
                agent.tick()
                sampler = drv._sampler
                timers.end_tick(agent.tick_ms[-1], sampler.slept if sampler else 0.0)
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        agent.shutdown()
        run.stop()
    return timers.ticks[1:]


def report_stages(pattern: str, rows: list[dict]) -> None:
    stages = sorted({k for r in rows for k in r} - {"tick_ms", "window"})
    order = ["toggle", "drain", "decode", "summarize", "native", "features", "read proc",
             "read sys", "model", "policies", "write sys", "audit"]
    stages = [s for s in order if s in stages] + [s for s in stages if s not in order]
    print(f"\n{pattern}: {len(rows)} ticks, stage ms (median / p90)")
    for s in [*stages, "other", "tick_ms", "window"]:
        if s == "other":
            vals = [r["tick_ms"] - sum(r.get(k, 0.0) for k in stages
                                       if k[0] not in "g[" and k not in OUTSIDE_TICK)
                    for r in rows]
        else:
            vals = [r.get(s, 0.0) for r in rows]
        print(f"  {s:<10} {statistics.median(vals):7.3f} {_pct(vals, 0.9):7.3f}")


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def baseline_package(rev: str, into: Path) -> Path:
    """An importable ``mltune`` of git revision ``rev`` (the source tree maps packages as
    pyproject.toml says), for PYTHONPATH."""
    src, pkg = into / "src", into / "pkg" / "mltune"
    src.mkdir(parents=True)
    repo = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    if (src / "setup.py").exists():
        # The C extensions, as pip builds them: without them the baseline would decode the
        # trace and score the model in Python, and look slower than it is.
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=src,
                       check=True, capture_output=True)
    shutil.copytree(src / "tuner", pkg)
    for sub in ("drivers", "policies", "configs", "models"):
        shutil.copytree(src / sub, pkg / sub)
    return pkg.parent


def as_cli(lab: Lab, pattern: str, ticks: int, interval: float, state: Path,
           pythonpath: Path | None = None) -> dict:
    run = lab.start(pattern, ticks * interval + 8)
    cmd = [sys.executable, "-m", "mltune", "run", "--driver", "readahead", "--device",
           lab.device, "--interval", str(interval), "--state-dir", str(state)]
    env = dict(os.environ, PYTHONPATH=str(pythonpath)) if pythonpath else None
    agent = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd="/")
    try:
        time.sleep(3.0)  # imports and model load are start-up, not steady state
        cpu0, t0 = _proc_cpu_s(agent.pid), time.monotonic()
        time.sleep(ticks * interval)
        cpu = (_proc_cpu_s(agent.pid) - cpu0) / (time.monotonic() - t0) * 100
        hwm = _hwm_mb(agent.pid)
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        run.stop()
    if agent.returncode != 0:
        raise SystemExit(f"agent failed: {err}")
    lines = [json.loads(x) for x in (state / "audit.jsonl").read_text().splitlines()]
    # Decisions only: a regression-guard outcome is a line of its own, without tick_ms.
    ms = [d["tick_ms"] for d in lines if d.get("kind", "decision") == "decision"][1:]
    return {"pattern": pattern, "ticks": len(ms), "tick_ms_median": statistics.median(ms),
            "tick_ms_p90": _pct(ms, 0.9), "cpu_pct": cpu, "rss_mb": hwm}


def _line(r: dict) -> str:
    return (f"{r['ticks']} ticks, tick_ms median {r['tick_ms_median']:.3f} p90 "
            f"{r['tick_ms_p90']:.3f}, CPU {r['cpu_pct']:.2f} % of a core, peak RSS "
            f"{r['rss_mb']:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ticks", type=int, default=20)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--patterns", default="seq,mmap-rand")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cli", action="store_true", help="run `mltune run` as a process")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp"))
    ap.add_argument("--baseline", metavar="REV", help="with --cli: also run this revision")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: loop devices, cgroups, tracefs")
    patterns = args.patterns.split(",")
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="mltune-tick-base-") as base, \
            Lab(args.workdir, size_mib=1024, files=32, mem_limit_mib=128) as lab:
        old = baseline_package(args.baseline, Path(base)) if args.baseline else None
        for rep in range(args.repeat):
            for p in patterns:
                if stop.is_set():
                    return
                lab.set_read_ahead_kb(128)
                with tempfile.TemporaryDirectory(prefix="mltune-tick-") as tmp:
                    if args.cli:
                        r = as_cli(lab, p, args.ticks, args.interval, Path(tmp) / "new")
                        print(f"run {rep + 1} {p}: {_line(r)}", flush=True)
                        if old is not None:
                            lab.set_read_ahead_kb(128)
                            b = as_cli(lab, p, args.ticks, args.interval, Path(tmp) / "old",
                                       old)
                            print(f"run {rep + 1} {p} {args.baseline}: {_line(b)}; median "
                                  f"ratio this/baseline "
                                  f"{r['tick_ms_median'] / b['tick_ms_median']:.2f}",
                                  flush=True)
                    else:
                        rows = in_process(lab, p, args.ticks, args.interval, Path(tmp))
                        report_stages(f"run {rep + 1} {p}", rows)


if __name__ == "__main__":
    main()
