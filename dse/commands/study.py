"""``dse run`` (launch or continue a study), ``dse front`` (its confirmed front), ``dse export`` (one point),
``dse report`` (one HTML page of it all)."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
from pathlib import Path
from typing import Iterator

from ..errors import UserError
from ..study.claims import DEFAULT_HEARTBEAT, GRACE_BEATS
from ..study.failures import PATIENCE as STORAGE_PATIENCE


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dse run``, ``dse front``, ``dse export`` and ``dse report``."""
    run = subparsers.add_parser(
        "run", help="launch or continue a study: surrogate search, real confirmation, confirmed front",
        description="Quantise the network, calibrate the distortion surrogate, search per-layer assignments on it, "
        "confirm its front with real error-injected inference, and print the confirmed front. Run it again on the "
        "same folder to continue: nothing finished is redone.",
    )
    run.add_argument("study", type=Path, help="study file (TOML), e.g. studies/digits.toml")
    run.add_argument("--out", type=Path, metavar="DIR", help="study folder (default: runs/<study name>)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="TABLE.KEY=VALUE",
                     help="override a study file key, e.g. --set search.budget=500 --set data.test=/data/cifar (repeatable)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    share = run.add_mutually_exclusive_group()
    share.add_argument("--worker", action="store_true",
                       help="one of several processes (or machines) sharing the study's storage (storage.journal or "
                       "storage.url): they split the search and confirmation jobs")
    share.add_argument("--fresh", action="store_true",
                       help="start afresh: move an earlier study folder aside and delete the study from a storage "
                       "outside it (each step is printed)")
    run.add_argument("--heartbeat", type=_seconds, default=DEFAULT_HEARTBEAT, metavar="SECONDS",
                     help=f"seconds between the heartbeats of this worker's claims; a claim silent for "
                     f"{GRACE_BEATS} heartbeats is taken over (default {DEFAULT_HEARTBEAT:g})")
    run.add_argument("--storage-patience", type=_patience, default=STORAGE_PATIENCE, metavar="SECONDS",
                     help="seconds to wait for a database storage that stops answering (a server restarting, a "
                     "network outage) before giving up; the run retries with growing pauses meanwhile (default "
                     f"{STORAGE_PATIENCE:g})")
    run.set_defaults(handler=run_command)

    front = subparsers.add_parser("front", help="the confirmed Pareto front of a study folder (table, JSON, CSV, plots)")
    front.add_argument("directory", type=Path, help="study folder (as given to dse run --out)")
    fmt = front.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the front as a JSON list of points, best energy first")
    fmt.add_argument("--csv", action="store_true", help="print the front as CSV")
    front.add_argument("--no-plots", action="store_true", help="do not (re)write the plots in the study folder")
    _add_accelerator(front)
    front.set_defaults(handler=front_command)

    export = subparsers.add_parser("export", help="write one front point for the hardware flow (JSON/CSV, LUTs, Verilog)")
    export.add_argument("directory", type=Path, help="study folder")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--pick", type=_index, metavar="INDEX", help="front index as `dse front` numbers it")
    which.add_argument("--max-drop", type=_points, metavar="POINTS", help="the most energy-saving point within this top-1 drop")
    export.add_argument("--out", type=Path, required=True, metavar="PATH", help="folder to write (replaced if an earlier export)")
    _add_accelerator(export)
    export.set_defaults(handler=export_command)

    report = subparsers.add_parser(
        "report", help="one self-contained HTML page of a study: settings, front, assignments, energy, designs",
        description="Write a study's report as one HTML file that needs nothing else to view (plots embedded, no "
        "scripts, fonts or network): the study's settings, the confirmed front (plot and table, predicted and "
        "held-out drops), every front point's per-layer assignment and energy, the surrogate against real inference, "
        "and the designs used with their error statistics and cost.",
    )
    report.add_argument("directory", type=Path, help="study folder")
    report.add_argument("--out", type=Path, required=True, metavar="FILE", help="the HTML file to write (atomically)")
    _add_accelerator(report)
    report.set_defaults(handler=report_command)


def _add_accelerator(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accelerator", default="", metavar="TEMPLATE|YAML",
                        help="also give the whole accelerator's energy on this ZigZag template (edge_tpu_like, "
                        "eyeriss_like, tesla_npu_like ...) or hardware YAML (default: the study's own, with "
                        "[objectives] energy = \"system\"); ZigZag's results are cached in the study folder")
    parser.add_argument("--mapping", default="", metavar="YAML", help="ZigZag mapping YAML for --accelerator")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a heartbeat is more than 0 seconds, got {text}")
    return value


def _patience(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"a patience is 0 seconds or more (and finite), got {text}")
    return value


def _index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a front index (0, 1, ...), got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a front index is 0 or more, got {value}")
    return value


def _points(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of top-1 points, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"a drop is 0 or more points, got {text}")
    return value


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``dse run``."""
    from ..study.config import load_study
    from ..study.directory import default_directory, open_directory
    from ..study.outputs import add_system_energy, write_front_files
    from ..study.render import front_table, levels_table
    from ..study.runner import run_study

    config = load_study(args.study, args.overrides)
    directory = args.out or default_directory(config)
    try:
        with _terminate_as_interrupt(), _threads(config.run.threads):
            report = run_study(config, directory, progress=not args.quiet, worker=args.worker, fresh=args.fresh,
                               heartbeat=args.heartbeat, patience=args.storage_patience)
    except KeyboardInterrupt:
        print(f"\ndse: interrupted; every finished trial and measurement is stored, the jobs at hand were given up. "
              f"To continue, run: {_continue_command(args, directory)}", file=sys.stderr)
        return 130
    folder = open_directory(directory)
    front = add_system_energy(folder, report.front, progress=not args.quiet)
    written = write_front_files(folder, front)
    print(levels_table(front))
    print()
    print(front_table(front))
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in report.timings.items())
    held = f" (and {report.held_out_evaluations} on held-out images)" if report.held_out_evaluations else ""
    print(f"\n{report.real_evaluations} real inferences{held}, {report.surrogate_evaluations} surrogate evaluations; "
          f"{phases}")
    print(f"study folder {directory}: {', '.join(p.name for p in written)}; storage {folder.storage} "
          "(opens in optuna-dashboard)")
    return 0


@contextlib.contextmanager
def _threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` for the run (0: left as they are), restored after it."""
    if not threads:
        yield
        return
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler stopping the job) stops the run as Ctrl-C does."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _continue_command(args: argparse.Namespace, directory: Path) -> str:
    """The command that continues this run (``--fresh`` left out)."""
    argv = ["dse", "run", str(args.study), "--out", str(directory)]
    for item in args.overrides:
        argv += ["--set", item]
    if args.worker:
        argv.append("--worker")
    if args.heartbeat != DEFAULT_HEARTBEAT:
        argv += ["--heartbeat", f"{args.heartbeat:g}"]
    if args.storage_patience != STORAGE_PATIENCE:
        argv += ["--storage-patience", f"{args.storage_patience:g}"]
    return shlex.join(argv)


def front_command(args: argparse.Namespace) -> int:
    """Handler of ``dse front``."""
    from ..study.directory import open_directory
    from ..study.outputs import load_front, write_front_files
    from ..study.render import front_csv, front_json, front_table, levels_table

    folder = open_directory(args.directory)
    front = load_front(folder, args.accelerator, args.mapping, progress=True)
    if not args.no_plots and front.points:
        written = write_front_files(folder, front)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if args.json:
        sys.stdout.write(front_json(front))
    elif args.csv:
        sys.stdout.write(front_csv(front))
    else:
        if not front.points:
            raise UserError(f"{args.directory} has no confirmed front yet; continue it with dse run")
        print(levels_table(front))
        print()
        print(front_table(front))
    return 0


def export_command(args: argparse.Namespace) -> int:
    """Handler of ``dse export``."""
    from ..study.directory import open_directory
    from ..study.export import export_point, pick_point
    from ..study.outputs import load_front

    folder = open_directory(args.directory)
    front = load_front(folder, args.accelerator, args.mapping, progress=True)
    index, point = pick_point(front, args.pick, args.max_drop)
    written = export_point(folder, front, index, point, args.out, args.accelerator, args.mapping)
    print(f"front point {index}: {point.energy_saving:.1f}% multiplier energy saved, top-1 {point.top1:.2f}% "
          f"(drop {point.drop_text()}); "
          f"wrote {len(written)} files to {args.out}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    """Handler of ``dse report``."""
    from ..output import atomic_write_text
    from ..study.directory import open_directory
    from ..study.outputs import load_front
    from ..study.report import study_report

    folder = open_directory(args.directory)
    front = load_front(folder, args.accelerator, args.mapping, progress=True)
    if args.out.is_dir():
        raise UserError(f"{args.out} is a folder; give the HTML file to write")
    page = study_report(folder, front, args.accelerator, args.mapping)
    atomic_write_text(args.out, page)
    print(f"wrote the report of {folder.config.name} ({len(front.points)} front points) to {args.out}", file=sys.stderr)
    return 0
