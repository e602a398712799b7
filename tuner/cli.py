"""The ``mltune`` command line.

Errors a user can fix are one line on stderr and exit code 2; no traceback reaches a user.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from . import config as configmod
from .errors import MltuneError, ModelError, StateError
from .registry import driver_names, make_driver
from .sysfs import Root

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Tune Linux kernel knobs with LightGBM models, safely and measurably.")
log = logging.getLogger("mltune")


class Usage(MltuneError):
    """Bad input: exit 2."""


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mltune: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _driver_opts(cfg: dict[str, Any], name: str, devices: list[str]) -> dict[str, Any]:
    d = cfg["drivers"].get(name, {})
    return {"devices": devices, "include": d.get("include", ["*"]),
            "exclude": d.get("exclude", []), "trace": d.get("trace", True),
            "trace_source": d.get("trace_source", "auto"),
            "window_s": d.get("sample_window_s", 0.05)}


def _check_driver(name: str) -> None:
    if name not in driver_names():
        raise Usage(f"unknown driver {name!r}; valid: {', '.join(driver_names())}")


def _load_model(name: str, driver: Any, path: str | None) -> tuple[Any, str]:
    from .model import Model, shipped_paths

    txt, meta = (Path(path), Path(path).with_suffix(".json")) if path else shipped_paths(name)
    try:
        return Model.load(txt, meta, name, driver.model_features), ""
    except ModelError as err:
        return None, str(err)


def _policies(cfg: dict[str, Any], name: str) -> list[Any]:
    from mltune.policies.guard import MeasuredGain, ModeGate, RegressionGuard, Settling
    from mltune.policies.limits import (
        AllowedRange,
        Cooldown,
        MaxChangesPerHour,
        MaxStep,
        MinGain,
        PressureGuard,
    )

    p = cfg["drivers"][name]["policies"]
    plateau = p["min_gain_plateau"]
    low, high = p["range"]["min"], p["range"]["max"]
    modes = cfg["drivers"][name]["modes"]
    return [AllowedRange(low, high), MaxStep(p["max_step_factor"], low, high),
            ModeGate(modes["learning_step_factor"]), RegressionGuard(), Settling(),
            MeasuredGain(),
            Cooldown(p["cooldown_s"]), MaxChangesPerHour(p["max_changes_per_hour"]),
            PressureGuard(p["pressure"]["memory_full_avg10"], p["pressure"]["io_full_avg10"]),
            MinGain(p["min_gain"], p["min_gain_further"], plateau["from"], plateau["gain"],
                    plateau["near_factor"], plateau["near_gain"], plateau["near_s"])]


def _mode_config(cfg: dict[str, Any], name: str) -> tuple[Any, Any]:
    from .modes import ModeConfig
    from .trials import GuardConfig

    d = cfg["drivers"][name]
    return (ModeConfig(start=d["mode"], **d["modes"]),
            GuardConfig(**d["policies"]["regression"]))


@app.command()
def run(
    driver: Annotated[str, typer.Option(help="Driver to run (see `mltune drivers`).")],
    device: Annotated[list[str] | None, typer.Option(
        help="Block device to tune, e.g. loop0 (repeatable). Default: config include/exclude."
    )] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between ticks.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Observe, score and log; write nothing. Works without root.")] = False,
    once: Annotated[bool, typer.Option("--once", help="Run a single tick and exit.")] = False,
    config: Annotated[Path | None, typer.Option(help="YAML file overriding the defaults.")] = None,
    state_dir: Annotated[Path | None, typer.Option(
        help="Journal and audit log directory (default /run/mltune).")] = None,
    model: Annotated[str | None, typer.Option(
        help="Model .txt (metadata .json beside it).")] = None,
    root: Annotated[Path, typer.Option(help="Root holding proc/ and sys/ (tests, containers).")]
    = Path("/"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Tune a knob live: observe → model → policies → apply, one audit line per decision.

    SIGINT/SIGTERM restore every value mltune changed and exit 0.

    Example: mltune run --driver readahead --device loop0 --interval 1 --dry-run
    """
    _setup_logging(verbose)
    # Handlers first: a SIGTERM during start-up (crash recovery, model loading) must still
    # end in an orderly stop, not in the default action halfway through a restore.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cfg = configmod.load(config)
    _check_driver(driver)
    interval = cfg["interval"] if interval is None else interval
    if not 0.05 <= interval <= 3600:
        raise Usage(f"--interval {interval:g}: must be between 0.05 and 3600 seconds")
    # `mode: advise` in the config is --dry-run: everything computed and logged, no write.
    dry_run = dry_run or cfg["drivers"][driver]["mode"] == "advise"
    if not dry_run and os.geteuid() != 0:
        raise Usage("writing kernel knobs needs root: run as root or add --dry-run")
    drv = make_driver(driver, Root(root), **_driver_opts(cfg, driver, device or []))
    targets = drv.discover()
    if not targets:
        raise Usage(f"driver {driver}: no targets (use --device or the config include list)")
    mdl, note = _load_model(driver, drv, model or cfg["drivers"][driver].get("model"))
    if mdl is None:
        log.warning("%s: %s; nothing will be written", driver, note)
    agent = _make_agent(drv, mdl, note, targets, cfg, driver, dry_run,
                        state_dir or Path(cfg["state_dir"]), Root(root))
    _serve(agent, interval, once, stop)


def _make_agent(drv: Any, mdl: Any, note: str, targets: list[Any], cfg: dict[str, Any],
                name: str, dry_run: bool, state_dir: Path, root: Root) -> Any:
    from .journal import Journal
    from .loop import Agent
    from .trials import Judge

    journal = None
    audit: Path | None = state_dir / "audit.jsonl"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if not dry_run:
            raise Usage(f"state dir {state_dir}: {err.strerror}") from err
        log.warning("state dir %s: %s; audit log not written", state_dir, err.strerror)
        audit = None
    if not dry_run:
        journal = Journal(state_dir, root)
        for line in journal.recover():
            log.info("%s", line)
    log.info("%s: %d target(s): %s%s; features from %s", name, len(targets),
             ", ".join(t.name for t in targets), " (dry run)" if dry_run else "",
             "tracepoints" if drv.trace else f"/proc ({drv.trace_note})")
    mode_cfg, guard_cfg = _mode_config(cfg, name)
    return Agent(drv, mdl, _policies(cfg, name), targets, journal, audit, note,
                 mode_cfg=mode_cfg, judge=Judge(guard_cfg), watch_s=cfg["watch_s"],
                 audit_max_bytes=int(cfg["audit_max_mb"] * 2**20))


def _serve(agent: Any, interval: float, once: bool, stop: threading.Event) -> None:
    try:
        agent.run(interval, stop, once)
    finally:
        for line in agent.shutdown():
            log.info("%s", line)
        s = agent.summary()
        log.info("stopped after %d ticks; median tick %.3f ms", s["ticks"],
                 s["tick_ms_median"] or 0.0)


@app.command()
def drivers(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    root: Annotated[Path, typer.Option(help="Root holding proc/ and sys/.")] = Path("/"),
) -> None:
    """List drivers, whether each is available on this host (and why not), and its targets."""
    cfg = configmod.load(None)
    rows = []
    for name in driver_names():
        drv = make_driver(name, Root(root), **_driver_opts(cfg, name, []))
        a = drv.availability()
        rows.append({"driver": name, "knob": drv.knob, "available": a.ok, "reason": a.reason,
                     "targets": list(a.targets)})
    if json_out:
        typer.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        state = "available" if r["available"] else f"unavailable: {r['reason']}"
        typer.echo(f"{r['driver']:<11} {r['knob']:<14} {state}; "
                   f"targets: {', '.join(r['targets']) or '-'}")


@app.command()
def restore(
    state_dir: Annotated[Path, typer.Option(help="Journal directory.")] = Path("/run/mltune"),
    root: Annotated[Path, typer.Option(help="Root holding proc/ and sys/.")] = Path("/"),
) -> None:
    """Put back every original value recorded in the journal (same boot only)."""
    from .journal import Journal
    from .tracefs import remove_stale_instances

    _setup_logging(False)
    journal = Journal(state_dir, Root(root))
    notes = journal.recover()
    notes += [f"removed tracefs instance {n} of a dead agent"
              for n in remove_stale_instances(Root(root))]
    for line in notes or ["journal empty: nothing to restore"]:
        log.info("%s", line)


# Typer vendors click in recent releases; take UsageError from its own BadParameter so the
# same code works with either.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


@app.command()
def resume(
    target: Annotated[str, typer.Argument(help="Frozen target, e.g. loop0.")],
    state_dir: Annotated[Path, typer.Option(help="State directory of the running agent.")]
    = Path("/run/mltune"),
) -> None:
    """Let the running agent tune TARGET again: after someone else changed it (it was
    frozen; their value becomes the new original), or after an EMERGENCY that refused writes
    caused (the target restarts in learning mode).
    """
    if not state_dir.is_dir():
        raise Usage(f"state dir {state_dir} does not exist: is an agent running?")
    if "/" in target or not target:
        raise Usage(f"target {target!r}: expected a name like loop0")
    try:
        (state_dir / f"resume-{target}").touch()
    except OSError as err:  # EACCES for a non-root user on /run/mltune, ENAMETOOLONG
        raise Usage(f"state dir {state_dir}: {err.strerror}") from err
    typer.echo(f"resume requested for {target}; the agent acts on it at its next tick")


def _register_all() -> None:
    """Add the lab and report commands once (main() may run many times in one process,
    as in tests; registering again would pile up duplicate commands)."""
    from . import lab_cli, report_cli

    if not any(c.callback is report_cli.status for c in app.registered_commands):
        lab_cli.register(app)
        report_cli.register(app)


def main() -> None:
    _register_all()
    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(130)
    except _UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `mltune`: show help, not an error
            print(e.format_message(), file=sys.stderr)
            sys.exit(2)
        print(f"mltune: error: {e.format_message()}", file=sys.stderr)
        sys.exit(2)
    except (Usage, MltuneError) as e:
        print(f"mltune: error: {e}", file=sys.stderr)
        sys.exit(1 if isinstance(e, StateError) else 2)
