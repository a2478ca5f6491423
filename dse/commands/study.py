"""``dse run`` (launch or continue a study), ``dse front`` (its confirmed front), ``dse export`` (one point)."""

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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dse run``, ``dse front`` and ``dse export``."""
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
    run.set_defaults(handler=run_command)

    front = subparsers.add_parser("front", help="the confirmed Pareto front of a study folder (table, JSON, CSV, plots)")
    front.add_argument("directory", type=Path, help="study folder (as given to dse run --out)")
    fmt = front.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the front as a JSON list of points, best energy first")
    fmt.add_argument("--csv", action="store_true", help="print the front as CSV")
    front.add_argument("--no-plots", action="store_true", help="do not (re)write the plots in the study folder")
    front.set_defaults(handler=front_command)

    export = subparsers.add_parser("export", help="write one front point for the hardware flow (JSON/CSV, LUTs, Verilog)")
    export.add_argument("directory", type=Path, help="study folder")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--pick", type=_index, metavar="INDEX", help="front index as `dse front` numbers it")
    which.add_argument("--max-drop", type=_points, metavar="POINTS", help="the most energy-saving point within this top-1 drop")
    export.add_argument("--out", type=Path, required=True, metavar="PATH", help="folder to write (replaced if an earlier export)")
    export.set_defaults(handler=export_command)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a heartbeat is more than 0 seconds, got {text}")
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
    from ..study.outputs import write_front_files
    from ..study.render import front_table, levels_table
    from ..study.runner import run_study

    config = load_study(args.study, args.overrides)
    directory = args.out or default_directory(config)
    try:
        with _terminate_as_interrupt():
            report = run_study(config, directory, progress=not args.quiet, worker=args.worker, fresh=args.fresh,
                               heartbeat=args.heartbeat)
    except KeyboardInterrupt:
        print(f"\ndse: interrupted; every finished trial and measurement is stored, the jobs at hand were given up. "
              f"To continue, run: {_continue_command(args, directory)}", file=sys.stderr)
        return 130
    folder = open_directory(directory)
    written = write_front_files(folder, report.front)
    print(levels_table(report.front))
    print()
    print(front_table(report.front))
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in report.timings.items())
    held = f" (and {report.held_out_evaluations} on held-out images)" if report.held_out_evaluations else ""
    print(f"\n{report.real_evaluations} real inferences{held}, {report.surrogate_evaluations} surrogate evaluations; "
          f"{phases}")
    print(f"study folder {directory}: {', '.join(p.name for p in written)}; storage {folder.storage} "
          "(opens in optuna-dashboard)")
    return 0


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
    return shlex.join(argv)


def front_command(args: argparse.Namespace) -> int:
    """Handler of ``dse front``."""
    from ..study.directory import open_directory
    from ..study.outputs import load_front, write_front_files
    from ..study.render import front_csv, front_json, front_table, levels_table

    folder = open_directory(args.directory)
    front = load_front(folder)
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
    front = load_front(folder)
    index, point = pick_point(front, args.pick, args.max_drop)
    written = export_point(folder, front, index, point, args.out)
    print(f"front point {index}: {point.energy_saving:.1f}% multiplier energy saved, top-1 {point.top1:.2f}% "
          f"(drop {point.drop_text()}); "
          f"wrote {len(written)} files to {args.out}")
    return 0
