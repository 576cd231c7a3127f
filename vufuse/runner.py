"""`vufuse run` and `vufuse shell`: a session with the FUSE glue and its control socket."""

from __future__ import annotations

import errno
import os
import shutil
import sys

from .control import ControlledMounting, ControlServer

PROMPT_PREFIX = "(vufuse) "
"""What `vufuse shell` puts before the prompt (also in $VUFUSE_PS1 for prompts of one's own)."""


def user_shell() -> list[str]:
    """The user's $SHELL (else /bin/sh), interactive."""
    return [os.environ.get("SHELL") or "/bin/sh", "-i"]


def _shell_setup(argv: list[str], runtime_dir: str, env: dict[str, str]) -> list[str]:
    """Mark the prompt without touching rc files: bash gets an --rcfile in the runtime dir
    that sources ~/.bashrc and then prefixes PS1; other shells get PS1 from the environment
    (sh, dash, ksh read it; zsh does unless its rc files set one)."""
    env["VUFUSE_PS1"] = PROMPT_PREFIX
    shell = os.path.basename(argv[0])
    if shell == "bash":
        rcfile = os.path.join(runtime_dir, "bashrc")
        with open(rcfile, "w") as file:
            file.write('[ -f "$HOME/.bashrc" ] && . "$HOME/.bashrc"\n'
                       'PS1="${VUFUSE_PS1}${PS1:-\\s-\\v\\$ }"\n')  # fmt: skip
        return [argv[0], "--rcfile", rcfile, "-i"]
    env["PS1"] = PROMPT_PREFIX + env.get("PS1", "$ ")
    return argv


def _with_vufuse_on_path(env: dict[str, str]) -> None:
    """Put the directory of the `vufuse` that starts the session first on PATH if PATH does
    not find one, so `vufuse mount` works inside a session started as .venv/bin/vufuse."""
    if shutil.which("vufuse", path=env.get("PATH")):
        return
    for directory in (os.path.dirname(os.path.abspath(sys.argv[0])),
                      os.path.dirname(sys.executable)):  # fmt: skip
        if os.access(os.path.join(directory, "vufuse"), os.X_OK):
            env["PATH"] = directory + os.pathsep + env.get("PATH", os.defpath)
            return


SPAWN_FAILED = 1


def _spawn_failure(group: BaseExceptionGroup) -> OSError | None:
    """The OSError the session's start failed with, if that is all that happened."""
    errors: list[BaseException] = [group]
    while len(errors) == 1 and isinstance(errors[0], BaseExceptionGroup):
        errors = list(errors[0].exceptions)
    if len(errors) == 1 and isinstance(errors[0], OSError):
        return errors[0]
    return None


def _spawn_failure_message(error: OSError) -> str:
    if error.errno == errno.EBUSY:
        nested = " (this is already a vufuse session: sessions do not nest)" if os.environ.get(
            "VUFUSE_SESSION") else ""  # fmt: skip
        return ("cannot start a session: this process tree already has a seccomp "
                f"listener{nested}; see docs/limitations.md")  # fmt: skip
    return f"cannot start a session: {error.strerror or error}"


def run_session(argv: list[str] | None, *, stats: bool = False,
                shell: list[str] | None = None) -> int:  # fmt: skip
    """Run `argv` (or `shell`) in a fresh session with its control socket; its exit status."""
    import trio

    from hypervisor.session import Session

    session = Session()
    mounting = ControlledMounting(session)
    server = ControlServer(session, mounting, tracer_stats=session.tracer.stats)
    env = dict(os.environ)
    _with_vufuse_on_path(env)
    runtime_dir = os.fsdecode(session.runtime_dir)
    if argv is None:
        assert shell is not None
        argv = _shell_setup(shell, runtime_dir, env)
    server.bind()

    async def main() -> int:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve)
            status = await session.run(
                [os.fsencode(a) for a in argv],
                [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()],
            )
            nursery.cancel_scope.cancel()
        return status

    try:
        status = trio.run(main)
    except KeyboardInterrupt:
        status = 130
    except BaseExceptionGroup as group:
        failure = _spawn_failure(group)
        if failure is None:
            raise
        sys.stderr.write(f"vufuse: {_spawn_failure_message(failure)}\n")
        return SPAWN_FAILED
    if stats:
        from .commands import print_stats

        print_stats({"syscalls": dict(session.tracer.stats()),
                     "mounts": [r.stats.summary() | {"mountpoint": os.fsdecode(
                         r.mount.mountpoint)} for r in mounting.history]},
                    sys.stderr)  # fmt: skip
    return int(status)
