"""The ``finsent`` command line.

Each package contributes its own sub-commands through a ``register(sub)``
function in its ``cli`` module (``deploy.cli``, ``model.cli``, ``storage.cli``,
``alerts.cli``, ``stream.commands``); a handler receives the parsed arguments,
with the settings resolved once here as ``args.settings``, and returns the
process exit code.  This module only assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Never reach a model hub: weights come from local checkpoints only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from stream.base.config import ConfigError, load_settings, peek_settings  # noqa: E402
from stream.base.errors import UserError  # noqa: E402
from stream.base.redact import install_log_scrubber, scrub  # noqa: E402

COMMAND_MODULES = (
    "deploy.cli",  # up, down, status
    "storage.cli",  # db, sql, rescore
    "model.cli",  # train, evaluate, classify
    "alerts.cli",  # alerts
    "stream.commands",  # worker, ingest, replay, demo
    "stream.plot",  # plot
    "stream.linking.cli",  # tickers
    "stream.dashboard",  # dashboard
)
# Commands whose start-up is a target register only their own module (the others import pandas,
# matplotlib, ... at module level): ``finsent classify`` must start in under 3 s (issue 11).  They
# also read their few settings without pydantic (``peek_settings``: about 0.09 s less, issue 24).
SOLO_COMMANDS = {"classify": "model.cli"}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finsent",
        description=(
            "Financial news sentiment monitoring: Kafka -> Faust -> transformer -> "
            "PostgreSQL trends -> apprise alerts. With no configuration the embedded "
            "local stack under .finsent/ is used (start it with 'finsent up')."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = next((a for a in argv or () if not a.startswith("-")), None)  # argv None: every command
    for name in (SOLO_COMMANDS[command],) if command in SOLO_COMMANDS else COMMAND_MODULES:
        importlib.import_module(name).register(sub)  # a missing module is an error, never skipped
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "aiokafka", "faust", "mode", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    secrets: tuple[str, ...] = ()
    try:
        # once, here: every handler reads args.settings
        args.settings = peek_settings() if args.command in SOLO_COMMANDS else load_settings()
        secrets = args.settings.secret_values()
        install_log_scrubber(secrets)  # belt and braces: no log line of any library shows a configured secret
        return int(args.func(args) or 0)
    except (UserError, ConfigError) as exc:
        print(f"finsent: error: {scrub(str(exc), *secrets)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("finsent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
