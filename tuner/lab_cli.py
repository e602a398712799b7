"""``mltune collect`` and ``mltune train``: building a model from real measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .errors import MltuneError
from .sysfs import Root

DEFAULT_VALUES = "4,16,32,64,128,256,512,1024,2048,4096"


def _csv_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise MltuneError(f"{what} {text!r}: expected comma-separated integers") from err
    if not values or any(v < 4 for v in values):
        raise MltuneError(f"{what} {text!r}: values must be >= 4")
    return values


def collect(
    driver: Annotated[str, typer.Option(help="Driver whose knob is swept.")] = "readahead",
    device: Annotated[str | None, typer.Option(
        help="Existing loop device with a mounted filesystem (default: create one).")] = None,
    out: Annotated[Path, typer.Option(
        help="Dataset file (JSON lines). An existing one is appended to: its passes are kept "
             "and the new ones numbered after them.")]
    = Path("readahead-dataset.jsonl"),
    patterns: Annotated[str | None, typer.Option(help="Comma-separated access patterns.")]
    = None,
    values: Annotated[str, typer.Option(help="Comma-separated read_ahead_kb values.")]
    = DEFAULT_VALUES,
    seconds: Annotated[float, typer.Option(help="Seconds per (pattern, value) run.")] = 5.0,
    repeats: Annotated[int, typer.Option(help="Passes over the whole grid.")] = 1,
    workdir: Annotated[Path, typer.Option(help="Where the lab puts its backing file.")]
    = Path("/var/tmp/mltune-lab"),
    mem_limit_mib: Annotated[int, typer.Option(help="Memory cgroup limit for the workload.")]
    = 256,
) -> None:
    """Measure throughput of fio access patterns × knob values on a loop device, inside a
    memory cgroup smaller than the data, recording what the driver observes each second.

    Example: mltune collect --driver readahead --out data/readahead.jsonl
    """
    from . import lab as labmod
    from .collect import collect as run_collect
    from .collect import next_rep
    from .registry import make_driver

    if driver != "readahead":
        raise MltuneError(f"collect supports driver 'readahead' only, not {driver!r}")
    names = patterns.split(",") if patterns else list(labmod.PATTERNS)
    unknown = [p for p in names if p not in labmod.PATTERNS]
    if unknown:
        raise MltuneError(f"unknown pattern {', '.join(unknown)}; "
                          f"valid: {', '.join(labmod.PATTERNS)}")
    grid = _csv_ints(values, "--values")
    if seconds < 3:
        raise MltuneError(f"--seconds {seconds:g}: need at least 3 (1 s warm-up + samples)")
    total = len(names) * len(grid) * repeats
    first_rep = next_rep(out, driver)  # a spoilt or foreign --out: refused before the lab
    try:
        with labmod.Lab(workdir, mem_limit_mib=mem_limit_mib, device=device) as lab:
            drv = make_driver(driver, Root("/"), devices=[lab.device])
            try:
                with typer.progressbar(length=total, label="collect", file=None) as bar:
                    rows = run_collect(lab, drv, names, grid, seconds, out, repeats,
                                       lambda _: bar.update(1), first_rep)
            finally:
                drv.close()
    except labmod.LabError as err:
        raise MltuneError(str(err)) from err
    typer.echo(f"{rows} observations from {total} runs appended to {out}")


def train(
    dataset: Annotated[Path, typer.Argument(help="Dataset written by `mltune collect`.")],
    out: Annotated[Path, typer.Option(help="Model text file; metadata goes beside it (.json).")]
    = Path("readahead.txt"),
    driver: Annotated[str, typer.Option(help="Driver the model is for.")] = "readahead",
) -> None:
    """Fit the LightGBM scoring model, report held-out accuracy (leave one pattern out).

    Example: mltune train data/readahead.jsonl --out models/readahead.txt
    """
    from .registry import make_driver
    from .train import train as run_train

    drv = make_driver(driver, Root("/"))
    trace = getattr(drv, "trace_features", ())
    metrics = run_train(dataset, out, drv.model_features, trace, driver,
                        getattr(drv, "derive", None), getattr(drv, "jitter", None),
                        getattr(drv, "shift", None))
    typer.echo(f"model written to {out} and {out.with_suffix('.json')}")
    for pattern, score in metrics["held_out_by_pattern"].items():
        typer.echo(f"  held out {pattern:<14} {score:.3f} of best throughput")
    typer.echo(f"  held-out geomean {metrics['held_out_geomean']:.3f}; "
               f"fit on training data {metrics['train_mean']:.3f}")


def register(app: typer.Typer) -> None:
    app.command()(collect)
    app.command()(train)
