"""The `vufuse` command.

`vufuse run [--debug[=FILE]] [--stats] [--] CMD...` runs CMD in a traced session (DESIGN §1):
stdin, stdout and the tty pass through untouched, the exit status is CMD's (128+N when a
signal N killed it), and nothing of the session survives it.  `vufuse shell` does the same with
the user's $SHELL.  Inside a session (``VUFUSE_SESSION``), `mount`, `umount`, `mounts`,
`status`, `abort` and `stats` act on it through its control socket (:mod:`vufuse.control`,
docs/usage.md).  Usage errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

USAGE_ERROR = 2
SESSION_COMMANDS = ("run", "shell")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (`vufuse: message`, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"vufuse: {message}\n")
        raise SystemExit(USAGE_ERROR)


def build_parser() -> argparse.ArgumentParser:
    """The command line of `vufuse`."""
    parser = _Parser(prog="vufuse", description="FUSE with no kernel module.")
    parser.add_argument(
        "--debug",
        nargs="?",
        const="-",
        metavar="FILE",
        dest="top_debug",
        help="log every FUSE request and virtualized syscall (to FILE)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def session_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--debug", nargs="?", const="-", metavar="FILE",
            help="log every FUSE request/reply (like libfuse -d) and every virtualized "
                 "syscall (like strace) to stderr, or to FILE with --debug=FILE",
        )  # fmt: skip
        command.add_argument(
            "--stats",
            action="store_true",
            help="print syscall and FUSE request statistics at the end",
        )

    run = commands.add_parser(
        "run",
        help="run CMD in a traced session",
        description="Run CMD in a traced session where FUSE daemons mount.",
    )
    session_options(run)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD", help="command and arguments")
    shell = commands.add_parser("shell", help="run $SHELL in a session",
                                description="Run your $SHELL in a session; its prompt starts "
                                            "with (vufuse).")  # fmt: skip
    session_options(shell)

    mount = commands.add_parser(
        "mount", help="run a FUSE daemon and wait until its mount is live",
        description="Run FSPROG ARGS... (an unmodified FUSE daemon) in this session and wait "
                    "until it has mounted and answered INIT.  On failure its own error output "
                    "is printed and the status is non-zero.",
    )  # fmt: skip
    mount.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up after SECONDS (default 30)",
    )
    mount.add_argument(
        "--json", action="store_true",
        help="once live, print the mount as `vufuse mounts --json` shows it",
    )  # fmt: skip
    mount.add_argument(
        "argv", nargs=argparse.REMAINDER, metavar="FSPROG ARGS", help="the daemon and its arguments"
    )

    umount = commands.add_parser(
        "umount", help="unmount MNT", description="Unmount MNT (umount2 in the session)."
    )
    umount.add_argument("-z", "--lazy", action="store_true", help="lazy unmount (MNT_DETACH)")
    umount.add_argument("mountpoint", metavar="MNT")

    for name, text in (
        ("mounts", "list this session's FUSE mounts"),
        ("status", "show this session's state"),
        ("stats", "per-mount per-opcode counts and latencies; syscall counts"),
    ):
        command = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        command.add_argument("--json", action="store_true", help="print the raw JSON reply")

    abort = commands.add_parser(
        "abort", help="abort MNT's connection (like fusectl's abort)",
        description="Abort the FUSE connection of MNT: every pending and later request fails "
                    "with ENOTCONN, and the daemon's reads of its device fail with ENODEV.",
    )  # fmt: skip
    abort.add_argument("mountpoint", metavar="MNT")
    return parser


def _expand_bare_debug(arguments: list[str]) -> list[str]:
    """`run --debug CMD`: a bare --debug must not swallow CMD as its FILE."""
    result: list[str] = []
    seen_command = False
    for index, word in enumerate(arguments):
        if word == "--":
            return result + arguments[index:]
        if not word.startswith("-"):
            if seen_command or word not in SESSION_COMMANDS:
                return result + arguments[index:]
            seen_command = True
        result.append("--debug=-" if word == "--debug" else word)
    return result


def _setup_logging(debug: str | None) -> None:
    if debug is None:
        logging.basicConfig(level=logging.ERROR, format="vufuse: %(message)s")
    elif debug == "-":
        logging.basicConfig(level=logging.DEBUG, format="vufuse: %(message)s")
    else:
        logging.basicConfig(level=logging.DEBUG, format="%(message)s", filename=debug)


def main(arguments: Sequence[str] | None = None) -> int:
    """Entry point of the `vufuse` console script."""
    parser = build_parser()
    words = list(sys.argv[1:] if arguments is None else arguments)
    options = parser.parse_args(_expand_bare_debug(words))
    if options.command is None:
        parser.error("missing command (try: vufuse run -- CMD, or vufuse --help)")
    debug = getattr(options, "debug", None) or options.top_debug
    _setup_logging(debug)
    if options.command in SESSION_COMMANDS:
        from .runner import run_session, user_shell

        if options.command == "run":
            argv = list(options.argv)
            if argv and argv[0] == "--":
                argv = argv[1:]
            if not argv:
                parser.error("run: missing CMD")
            status = run_session(argv, stats=options.stats)
        else:
            status = run_session(None, stats=options.stats, shell=user_shell())
        sys.exit(status)
    from . import commands

    status = commands.dispatch(parser, options)
    sys.exit(status)


def run_command(argv: Sequence[str]) -> int:
    """Run `argv` in a fresh session; returns its exit status (kept for callers of 0.1)."""
    from .runner import run_session

    return run_session(list(argv))


if __name__ == "__main__":
    main()
