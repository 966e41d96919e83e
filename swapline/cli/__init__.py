"""The `swapline` command: parsing and printing only, over the Python API."""

from __future__ import annotations

import logging
import signal
import sys

from swapline.errors import SwaplineError


def main(argv: list[str] | None = None) -> int:
    from swapline.cli.output import error
    from swapline.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="swapline: %(message)s", stream=sys.stderr
    )
    # SIGTERM (a service manager stopping us) ends the work like Ctrl-C: cleanly, keeping what is done.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return args.func(args)
    except SwaplineError as exc:
        error(str(exc))
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        error("interrupted")
        return 130


__all__ = ["main"]
