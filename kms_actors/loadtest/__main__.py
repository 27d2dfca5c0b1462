"""``python -m kms_actors.loadtest ...`` runs ``kms-actors loadtest ...`` on its own."""

from __future__ import annotations

import argparse
import sys

from kms_actors.loadtest import add_parser, run


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` as the arguments of ``kms-actors loadtest`` and run it."""
    parser = argparse.ArgumentParser(prog="kms-actors")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["loadtest", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
