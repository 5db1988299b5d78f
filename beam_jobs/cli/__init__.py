"""``clin-linker``: one command, a sub-command per job; the whole product's front door.

It lives in ``beam_jobs`` because that package sits on top of the import graph (it may import every other
folder, none imports it). Each folder contributes its own sub-commands (ontologies: vocab/index; beam_jobs: run, code, report;
models: model/train; pipeline: eval), registered here.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import RunFailed


def build_parser() -> argparse.ArgumentParser:
    from ...models import cli as models_cli
    from ...ontologies import cli as ontologies_cli
    from ...pipeline import feature_reranker_train as feature_reranker_cli
    from ...pipeline.coder import cli as coder_cli
    from ...pipeline.evaluation import cli as evaluation_cli
    from . import code as code_cli
    from . import report as report_cli
    from . import run as run_cli

    parser = argparse.ArgumentParser(
        prog="clin-linker",
        description="Clinical notes -> coded OMOP CDM records (NOTE_NLP), fully offline.",
        epilog="Run `clin-linker COMMAND --help` for the options of each command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details (never note text)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_cli.register(commands)
    code_cli.register(commands)
    report_cli.register(commands)
    ontologies_cli.register(commands)
    train_commands, model_commands = models_cli.register(commands)
    coder_cli.register(train_commands)
    feature_reranker_cli.register(train_commands)
    evaluation_cli.register(commands, model_commands=model_commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_options_on", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, ValueError) as e:  # user errors: say what and what to do, no traceback
        print(f"clin-linker {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RunFailed as e:  # a run that failed and left its output as it was: say so, no traceback
        print(f"clin-linker {args.command}: failed: {e}", file=sys.stderr)
        return 1

