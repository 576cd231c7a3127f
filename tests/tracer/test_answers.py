"""The answer cache of the C core: stat-family calls answered by the listener thread from
pushed answers, their deadlines, the symlink rule, the generation check and the identity
watch (docs/tracer-core.md, "The answer cache").  No Python handler runs for an answered call:
the paths used here exist nowhere, so every answer the tracee sees came from the cache.
"""

from __future__ import annotations

import time

import pytest

from hypervisor import _tracer
from hypervisor.abi import pack_stat, pack_statx
from hypervisor.provider import Attributes

from .conftest import NR_LSTAT, NR_NEWFSTATAT, NR_STAT, NR_STATX, TEST_SPEC, run_script

NR_SETGROUPS = 116
NR_SETFSUID = 122
T = _tracer
ROLES = [
    (NR_STAT, T.ROLE_STAT, 0),
    (NR_LSTAT, T.ROLE_LSTAT, 0),
    (NR_NEWFSTATAT, T.ROLE_NEWFSTATAT, 0),
    (NR_STATX, T.ROLE_STATX, 0),
    (NR_SETGROUPS, T.ROLE_SETGROUPS, 0),
    (NR_SETFSUID, T.ROLE_SET_UIDS, 1),
]
BASE = "/vufuse-answer-test-nowhere"

STAT_SCRIPT = """
import errno
def size(call):
    try:
        return call().st_size
    except OSError as error:
        return errno.errorcode[error.errno]
def statx_size(path, flags=0):
    buffer = ctypes.create_string_buffer(256)
    if libc.syscall(332, -100, path.encode(), flags, 0x7FF, buffer) < 0:
        return errno.errorcode[ctypes.get_errno()]
    return int.from_bytes(buffer.raw[40:48], "little")
"""


@pytest.fixture
def tracer():
    """A Tracer trapping setgroups and setfsuid too, with the answer roles set."""
    spec = [*TEST_SPEC, (NR_SETGROUPS, T.ACTION_TRAP, 0, -1, -1, -1, -1),
            (NR_SETFSUID, T.ACTION_TRAP, 0, -1, -1, -1, -1)]
    instance = _tracer.Tracer(spec, fd_base=512, max_nr=450)
    instance.set_syscall_roles(ROLES)
    yield instance
    instance.close()
    instance.kill_all()


def push(tracer, path: str, size: int, *, symlink: bool = False, seconds: float = 600,
         generation: int | None = None) -> bool:
    mode = (0o120777 if symlink else 0o100644)
    attrs = Attributes(ino=7, mode=mode, size=size)
    return tracer.cache_answer(
        path.encode(), pack_stat(attrs, 42), pack_statx(attrs, 42, 99, False), symlink,
        time.monotonic_ns() + int(seconds * 1e9),
        tracer.answer_generation() if generation is None else generation,
    )


def test_answers_for_every_stat_variant(tracer, tmp_path) -> None:
    assert push(tracer, f"{BASE}/f", 12345)
    result = run_script(tracer, STAT_SCRIPT + f"""
report(size(lambda: os.stat("{BASE}/f")), size(lambda: os.lstat("{BASE}/f")))
report(statx_size("{BASE}/f"), statx_size("{BASE}/f", 0x100))
os.chdir("/")
report(size(lambda: os.stat("{BASE[1:]}/f")))
report(size(lambda: os.stat("{BASE}//f")), size(lambda: os.stat("{BASE}/./f")),
       size(lambda: os.stat("{BASE}/f/")), size(lambda: os.stat("{BASE}/g")))
""")
    assert result.lines == ["12345 12345", "12345 12345", "12345",
                            "ENOENT ENOENT ENOENT ENOENT"], result
    assert result.stats["answered"] == 5


def test_expired_answers_are_not_given(tracer) -> None:
    assert push(tracer, f"{BASE}/old", 1, seconds=-1)
    result = run_script(tracer, STAT_SCRIPT + f'report(size(lambda: os.stat("{BASE}/old")))')
    assert result.lines == ["ENOENT"]
    assert result.stats["answered"] == 0


def test_a_symlink_answers_only_calls_that_do_not_follow_it(tracer) -> None:
    assert push(tracer, f"{BASE}/link", 3, symlink=True)
    result = run_script(tracer, STAT_SCRIPT + f"""
report(size(lambda: os.stat("{BASE}/link")), size(lambda: os.lstat("{BASE}/link")))
report(statx_size("{BASE}/link"), statx_size("{BASE}/link", 0x100))
""")
    assert result.lines == ["ENOENT 3", "ENOENT 3"]


def test_answers_computed_before_a_drop_are_refused(tracer) -> None:
    generation = tracer.answer_generation()
    assert tracer.drop_answers() == generation + 1
    assert not push(tracer, f"{BASE}/stale", 1, generation=generation)
    assert push(tracer, f"{BASE}/fresh", 2)
    tracer.drop_answers()
    result = run_script(tracer, STAT_SCRIPT + f'report(size(lambda: os.stat("{BASE}/fresh")))')
    assert result.lines == ["ENOENT"]


def test_identity_changes_stop_the_answers(tracer) -> None:
    assert tracer.session_ids() is not None
    assert push(tracer, f"{BASE}/f", 5)
    result = run_script(tracer, STAT_SCRIPT + f"""
libc.syscall(122, os.getuid())  # setfsuid to the same id: nothing changes
report(size(lambda: os.stat("{BASE}/f")))
try:
    os.setgroups([4242])  # refused to a user, done for root: the core can't know which
except OSError:
    pass
report(size(lambda: os.stat("{BASE}/f")))
""")
    assert result.lines == ["5", "ENOENT"], result
    assert tracer.session_ids() is None
    assert not push(tracer, f"{BASE}/f", 5)


def test_roles_need_trapped_syscalls(tracer) -> None:
    with pytest.raises(ValueError):
        tracer.set_syscall_roles([(39, T.ROLE_STAT, 0)])  # getpid: not in the spec
