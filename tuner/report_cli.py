"""``mltune explain``, ``mltune status`` and ``mltune config validate``: reading what the
agent did, in words."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from . import audit
from . import config as configmod
from .errors import MltuneError
from .model import CANDIDATE_FEATURE
from .sysfs import Root

StateDir = Annotated[Path, typer.Option(help="State directory of the agent.")]
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)


def _audit(state_dir: Path) -> Iterator[dict[str, Any]]:
    """Every audit line, oldest first: the rotated file's, then the current one's."""
    found = [p for p in audit.paths(state_dir / "audit.jsonl") if p.exists()]
    if not found:
        raise MltuneError(f"no audit log at {state_dir / 'audit.jsonl'} "
                          "(is --state-dir right?)")
    for path in found:
        try:
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    try:
                        yield json.loads(line)
                    except ValueError as err:
                        raise MltuneError(f"{path}:{n}: not JSON ({err})") from err
        except FileNotFoundError:
            continue  # rotated between the listing and the open: its lines are in the next


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _what(d: dict[str, Any]) -> str:
    if d.get("written") is not None:
        return f"{d['current']} → {d['written']} (written)"
    if d["chosen"] == d["current"]:
        return f"kept {d['current']}"
    if d.get("dry_run"):
        return f"would set {d['current']} → {d['chosen']} (dry run)"
    # Not a dry run and nothing written: the target was frozen (the note says why).
    return f"kept {d['current']} (wanted {d['chosen']}; nothing written)"


def _sentence(d: dict[str, Any], top: list[tuple[str, float, Any]]) -> str:
    # Audit lines from before modes existed have no "mode": no tag.
    mode = "" if not d.get("mode") else " [advise]" if d.get("dry_run") else f" [{d['mode']}]"
    lines = [f"{_when(d['time'])} {d['driver']}/{d['target']}{mode}: {_what(d)}"]
    if d.get("note"):
        lines.append(f"  note: {d['note']}")
    if d.get("trigger"):
        lines.append(f"  early tick: {d['trigger']}")
    scores = d.get("scores") or {}
    if scores:
        best = sorted(scores.items(), key=lambda kv: -kv[1])[:3]
        cur = scores.get(str(d["current"]))
        n = d.get("averaged", 1)
        lines.append("  model: best " + ", ".join(f"{v}={s:.2f}" for v, s in best)
                     + (f"; current {d['current']}={cur:.2f}" if cur is not None else "")
                     + (f" (mean of the last {n} ticks)" if n > 1 else ""))
    for v in d.get("verdicts", []):
        lines.append(f"  policy {v['policy']}: {v['action']} ({v['reason']})")
    if top:
        lines.append(f"  features that pushed hardest for {d['best']}: " + ", ".join(
            f"{name}={_fmt(value)} ({c:+.2f})" for name, c, value in top))
    return "\n".join(lines)


def _measured(o: dict[str, Any]) -> str:
    """The regression guard's verdict on a change, in words."""
    pred = o.get("predicted")
    said = f"; the model predicted {pred:.2f}x" if pred else ""
    return f"  measured afterwards: {o['verdict']} ({o['reason']}{said})"


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _contributions(model: Any, d: dict[str, Any], k: int) -> list[tuple[str, float, Any]]:
    if model is None or d.get("best") is None:
        return []
    feats = {n: (math.nan if v is None else v) for n, v in d["features"].items()}
    contrib = model.contributions(feats, int(d["best"]))
    top = sorted(contrib.items(), key=lambda kv: -abs(kv[1]))[:k]
    # The candidate is a model input too, not an observation: show its value, not "n/a".
    shown = {**d["features"], CANDIDATE_FEATURE: math.log2(int(d["best"]))}
    return [(n, c, shown.get(n)) for n, c in top]


def explain(
    state_dir: StateDir = Path("/run/mltune"),
    target: Annotated[str | None, typer.Option(help="Only this target, e.g. loop0.")] = None,
    last: Annotated[int, typer.Option(help="How many decisions to show.", min=1)] = 5,
    changes_only: Annotated[bool, typer.Option("--changes", help="Only decisions that "
                                               "changed (or would change) a value.")] = False,
    model: Annotated[str | None, typer.Option(help="Model used by the agent, if not the "
                                              "shipped one.")] = None,
) -> None:
    """Say in words what the agent decided and which features pushed hardest (SHAP values
    from LightGBM's pred_contrib).

    Example: mltune explain --state-dir /run/mltune --target loop0 --last 3
    """
    from .cli import _load_model
    from .registry import make_driver

    lines = list(_audit(state_dir))
    measured = {o["decision"]: o for o in lines if o.get("kind") == "outcome"}
    picked = [d for d in lines if d.get("kind", "decision") == "decision"
              and target in (None, d["target"])
              and (not changes_only or d["chosen"] != d["current"])][-last:]
    if not picked:
        typer.echo("no matching decisions")
        return
    models: dict[str, Any] = {}
    for d in picked:
        name = d["driver"]
        if name not in models:
            drv = make_driver(name, Root("/"))
            models[name] = _load_model(name, drv, model)[0]
        typer.echo(_sentence(d, _contributions(models[name], d, 4)))
        if d.get("id") in measured:
            typer.echo(_measured(measured[d["id"]]))


def _agent_state(state_dir: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """From the agent's state file: driver/target → why frozen, and driver/target → mode
    and why ({"mode": "advise"} for every target of a dry run). Absent file: nothing."""
    try:
        raw = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))
        drv = raw["driver"]
        frozen = {f"{drv}/{t}": str(why) for t, why in raw.get("frozen", {}).items()}
        modes = {f"{drv}/{t}": {"mode": "advise" if raw.get("advise") else str(m["mode"]),
                                "why": str(m["why"])}
                 for t, m in raw.get("modes", {}).items()}
        return frozen, modes
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise MltuneError(f"{state_dir / 'state.json'}: unreadable ({err})") from err


def status(
    state_dir: StateDir = Path("/run/mltune"),
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    root: Annotated[Path, typer.Option(help="Root holding proc/ and sys/ (tests, containers).")]
    = Path("/"),
) -> None:
    """Per target: current value, original value (if mltune changed it), mode (learning,
    collaboration, recommendation, emergency; advise in a dry run), frozen or not, and the
    last decision."""
    from .journal import Journal

    live = Root(root)
    journal = Journal(state_dir, live)
    _, entries = journal.load()
    last: dict[str, dict[str, Any]] = {}
    try:
        for d in _audit(state_dir):
            if d.get("kind", "decision") == "decision":
                last[f"{d['driver']}/{d['target']}"] = d
    except MltuneError:
        pass  # no audit log yet: the journal alone still says what to restore
    frozen, modes = _agent_state(state_dir)
    rows = []
    for key in sorted(set(last) | {f"{e.driver}/{e.target}" for e in entries}):
        d = last.get(key)
        entry = next((e for e in entries if f"{e.driver}/{e.target}" == key), None)
        path = entry.path if entry else f"sys/block/{key.split('/', 1)[1]}/queue/read_ahead_kb"
        rows.append({"target": key, "current": live.read(path, fallback=None),
                     "original": entry.original if entry else None,
                     "changed_by_mltune": entry is not None,
                     "frozen": frozen.get(key),
                     "mode": modes.get(key, {}).get("mode"),
                     "mode_why": modes.get(key, {}).get("why"),
                     "last_decision": None if d is None else {
                         k: d.get(k) for k in ("time", "current", "chosen", "written", "note")}})
    if json_out:
        typer.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        ld = r["last_decision"]
        current = "-" if r["current"] is None else r["current"]  # device gone
        orig = f"original {r['original']}" if r["changed_by_mltune"] else "unchanged"
        decided = ("none recorded" if ld is None
                   else f"{_when(ld['time'])}: {ld['current']} → {ld['chosen']}")
        mode = r["mode"] or "-"
        typer.echo(f"{r['target']:<16} current {current:<6} {orig:<14} mode {mode:<14} "
                   f"last decision {decided}")
        if r["mode"] == "emergency":
            typer.echo(f"{'':<16} EMERGENCY: {r['mode_why']}")
        if r["frozen"]:
            typer.echo(f"{'':<16} FROZEN: {r['frozen']}")
    if not rows:
        typer.echo(f"no decisions recorded in {state_dir}")


@config_app.command("validate")
def validate(file: Annotated[Path, typer.Argument(help="YAML configuration file.")]) -> None:
    """Check a configuration file; exit 2 naming the first bad key."""
    configmod.load(file)
    typer.echo(f"{file}: ok")


def register(app: typer.Typer) -> None:
    app.command()(explain)
    app.command()(status)
    app.add_typer(config_app, name="config")
