"""bind/connect (ACTION_TRAP_SOCKADDR): queued only for a pathname AF_UNIX address that may
lie under a watched prefix (or a virtual fd); abstract, unnamed, other families and paths
elsewhere run natively without Python."""

from __future__ import annotations

import textwrap

from hypervisor import _tracer

from .conftest import TEST_SPEC, continue_all, run_script, tracer_fixture

NR_CONNECT, NR_BIND = 42, 49
SPEC = [
    *TEST_SPEC,
    (NR_CONNECT, _tracer.ACTION_TRAP_SOCKADDR, 0b1, -1, -1, -1, -1),
    (NR_BIND, _tracer.ACTION_TRAP_SOCKADDR, 0b1, -1, -1, -1, -1),
]

SCRIPT = """
import os, socket
def attempt(label, family, kind, verb, address):
    s = socket.socket(family, kind)
    try:
        getattr(s, verb)(address)
        report(label, "ok")
    except OSError as error:
        report(label, error.errno)
    s.close()
U, S, D = socket.AF_UNIX, socket.SOCK_STREAM, socket.SOCK_DGRAM
attempt("outside", U, S, "bind", OUTSIDE + "/a")
attempt("inside", U, S, "bind", INSIDE + "/b")
attempt("relative-inside", U, D, "bind", "mnt/c")
attempt("abstract", U, S, "bind", b"\\0vufuse-test-abstract")
attempt("inet", socket.AF_INET, S, "bind", ("127.0.0.1", 0))
attempt("connect-inside", U, S, "connect", INSIDE + "/b")
attempt("connect-outside", U, S, "connect", OUTSIDE + "/a")
"""


tracer = tracer_fixture(SPEC)


def test_only_unix_paths_under_a_prefix_are_queued(tracer, tmp_path):
    (tmp_path / "mnt").mkdir()
    (tmp_path / "other").mkdir()
    tracer.set_prefixes([str(tmp_path / "mnt")])
    queued = []

    def handler(tracer, notification):
        if notification.nr in (NR_BIND, NR_CONNECT):
            assert notification.reason == _tracer.REASON_PATH
            queued.append(notification.nr)
        continue_all(tracer, notification)

    script = f"INSIDE = {str(tmp_path / 'mnt')!r}\nOUTSIDE = {str(tmp_path / 'other')!r}\n"
    result = run_script(tracer, script + textwrap.dedent(SCRIPT), handler, cwd=str(tmp_path))
    assert result.exit_code == 0, result.lines
    # Continued, every call did what the kernel does (connect to a closed socket: refused).
    assert result.lines == [
        "outside ok", "inside ok", "relative-inside ok", "abstract ok", "inet ok",
        "connect-inside 111", "connect-outside 111",
    ]  # fmt: skip
    assert queued == [NR_BIND, NR_BIND, NR_CONNECT]
    assert result.stats["queued"] == 3


def test_no_prefix_means_no_bind_in_python(tracer, tmp_path):
    script = f"INSIDE = OUTSIDE = {str(tmp_path)!r}\n" + textwrap.dedent(SCRIPT).replace(
        '"mnt/c"', '"c"')  # fmt: skip
    result = run_script(tracer, script, cwd=str(tmp_path))
    assert result.exit_code == 0, result.lines
    assert result.stats["queued"] == 0
