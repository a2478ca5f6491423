"""The ``dse`` command: one sub-command module per group, user mistakes as one clear line."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from .errors import UserError

#: Modules that each define ``register(subparsers)``; imported at start-up, so they must import
#: heavy dependencies (torch, optuna) inside their handlers, not at module level.
COMMAND_MODULES = (
    "dse.commands.zoo",
    "dse.commands.inference",
    "dse.commands.surrogate",
    "dse.commands.study",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="dse",
        description="Per-layer approximate-multiplier design-space exploration for DNN accelerators.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:  # a command group not written yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args) or 0)
    except UserError as error:
        print(f"dse: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dse: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0


if __name__ == "__main__":
    sys.exit(main())
