"""FLUSH whenever an fd table drops a reference to a virtual file (DESIGN §4, issue 6).

The kernel flushes in filp_close(): close(2), dup2 over an open fd, close_range, exec of an
O_CLOEXEC fd, process exit (each of its fds), death by a signal.  Each FLUSH carries the
process as lock owner.  The script prints the pids; the provider records every FLUSH's owner.
"""

from __future__ import annotations

import pytest
from sessionhelp import PYTHON, World, needs_tracer, run_session

pytestmark = [needs_tracer, pytest.mark.e2e]

DROPS = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
path = os.path.join(sys.argv[1], "hello.txt")
me = os.getpid()
fd = os.open(path, os.O_RDONLY)               # O_CLOEXEC (PEP 446)
a = os.dup(fd)
null = os.open("/dev/null", os.O_RDONLY)
os.dup2(null, a)                               # 1: dup2 over a virtual fd
b = os.dup(fd)
assert libc.syscall(436, b, b, 0) == 0         # 2: close_range
child = os.fork()
if child == 0:
    os.execv("/bin/true", ["true"])            # 3: exec drops the O_CLOEXEC fd
os.waitpid(child, 0)
exec_child = child
child = os.fork()
if child == 0:
    os._exit(0)                                # 4: exit drops every fd
os.waitpid(child, 0)
exit_child = child
reader, writer = os.pipe()
child = os.fork()
if child == 0:
    os.close(fd)                               # 5: close in the child
    os.open(path, os.O_RDONLY)
    os.write(writer, b"x")
    signal.pause()                             # 6: killed while holding its own fd
os.read(reader, 1)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
killed_child = child
os.close(fd)                                   # 7: close
os.open(path, os.O_RDONLY)                     # 8: left open at exit
print(me, exec_child, exit_child, killed_child)
"""


async def test_every_reference_drop_flushes(world: World) -> None:
    got = await run_session([PYTHON, "-c", DROPS, str(world.mnt)], world.mounts)
    assert got.status == 0, got.stderr
    me, exec_child, exit_child, killed_child = map(int, got.stdout.split())
    flushes = list(world.provider.flushes)
    # The FLUSH owed for a death by signal is sent when the pidfd says so: it may come after
    # the parent's next close (the kernel's comes before the parent's wait returns).
    assert flushes.count(killed_child) == 2
    del flushes[len(flushes) - 1 - flushes[::-1].index(killed_child)]
    assert flushes == [me, me, exec_child, exit_child, killed_child, me, me]
    # ...and every open file description was released once its last copy went.
    assert len(world.provider.released) == len(world.provider.opened) == 3


FAILED_EXEC = r"""
import os, sys
fd = os.open(os.path.join(sys.argv[1], "hello.txt"), os.O_RDONLY)
try:
    os.execv("/nonexistent/program", ["x"])
except OSError as e:
    print("exec", e.errno)
print(len(os.read(fd, 100)))
"""


async def test_a_failed_exec_keeps_its_cloexec_fds(world: World) -> None:
    got = await run_session([PYTHON, "-c", FAILED_EXEC, str(world.mnt)], world.mounts)
    assert got.status == 0, got.stderr
    assert got.stdout.split() == ["exec", "2", "13"]
    assert len(world.provider.flushes) == 1  # the exit's, not the failed exec's


INHERITED = r"""
import os, signal, sys
path = os.path.join(sys.argv[1], "hello.txt")
me = os.getpid()
fd = os.open(path, os.O_RDONLY)
os.set_inheritable(fd, True)
reader, writer = os.pipe()
os.set_inheritable(writer, True)
children = []
for how in ("fork", "fork-and-close", "posix_spawn"):
    if how == "posix_spawn":   # clone(CLONE_VM|CLONE_VFORK), then exec: keeps the fd
        child = os.posix_spawn(sys.executable, [sys.executable, "-c",
                               "import os,signal; os.write(%d, b'x'); signal.pause()" % writer],
                               os.environ)
    else:
        child = os.fork()
        if child == 0:
            if how == "fork-and-close":
                os.close(fd)               # its own FLUSH now: none owed at its death
            os.write(writer, b"x")
            signal.pause()
    os.read(reader, 1)
    os.kill(child, signal.SIGKILL)     # killed holding the inherited copy
    os.waitpid(child, 0)
    children.append(child)
os.close(fd)
print(me, *children)
"""


async def test_a_child_killed_holding_an_inherited_fd_flushes(world: World) -> None:
    """fork gives the child its own fd table: its death by SIGKILL flushes the inherited
    copy, with the child as lock owner, before the parent's own close (kernel order)."""
    got = await run_session([PYTHON, "-c", INHERITED, str(world.mnt)], world.mounts)
    assert got.status == 0, got.stderr
    me, forked, closed, spawned = map(int, got.stdout.split())
    assert list(world.provider.flushes) == [forked, closed, spawned, me]
    assert len(world.provider.released) == len(world.provider.opened) == 1
