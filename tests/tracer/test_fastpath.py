"""The fast path: which path and fd syscalls reach Python, and which the C core CONTINUEs."""

from __future__ import annotations

import errno
import os
import socket
import textwrap
import time

import pytest

from hypervisor import _tracer

from .conftest import NR_TUXCALL, PATH_SYSCALLS, TEST_SPEC, run_script


@pytest.fixture(params=["inotify", "fstat"])
def tracer(request, monkeypatch):
    """The test Tracer, with the prefix directories followed through inotify, and again
    through the fallback (one fstat per judgement)."""
    if request.param == "fstat":
        monkeypatch.setenv("VUFUSE_TRACER_NO_INOTIFY", "1")
    instance = _tracer.Tracer(TEST_SPEC, fd_base=512, max_nr=450)
    monkeypatch.delenv("VUFUSE_TRACER_NO_INOTIFY", raising=False)
    yield instance
    instance.close()
    instance.kill_all()


@pytest.fixture
def tree(tmp_path):
    """tmp/{mnt/, other/, real.txt, link -> mnt, dangling -> mnt/nothing, out -> real.txt}"""
    (tmp_path / "mnt").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "real.txt").write_text("real")
    (tmp_path / "link").symlink_to(tmp_path / "mnt")
    (tmp_path / "dangling").symlink_to(tmp_path / "mnt" / "nothing")
    (tmp_path / "relative-dangling").symlink_to("mnt/nothing")
    (tmp_path / "out").symlink_to("real.txt")
    return tmp_path


def record_paths(queued):
    """A handler that notes (path, reason) of each queued path syscall and CONTINUEs it."""

    def handler(tracer, notification):
        if notification.nr == NR_TUXCALL:
            fd = notification.args[0]
            link = os.readlink(f"/proc/{notification.pid}/fd/{fd}")
            tracer.add_virtual_inode(int(link[len("socket:[") : -1]))
            tracer.respond(notification.id, value=0)
            return
        if notification.nr in PATH_SYSCALLS:
            address = notification.args[PATH_SYSCALLS[notification.nr]]
            path = tracer.read_string(notification.pid, address).decode()
            queued.append((path, notification.reason))
        tracer.respond(notification.id, continue_=True)

    return handler


# Each line: a call the tracee makes (with cwd = the tree), and whether it must be queued.
CASES = [
    ("os.stat(f'{T}/mnt/file')", True),  # under the prefix, nonexistent
    ("os.stat(f'{T}/mnt')", True),  # the prefix itself
    ("os.stat(f'{T}/mnt/a/b/c/d')", True),  # several missing levels
    ("os.stat(f'{T}/link/x')", True),  # through a symlink
    ("os.stat(f'{T}/link')", True),  # a symlink to the mountpoint itself
    ("os.stat(f'{T}/other/../mnt/y')", True),  # through ..
    ("os.stat(f'{T}//other/./..//mnt')", True),  # odd spelling
    ("os.stat('mnt/z')", True),  # relative to the cwd
    ("os.stat('./other/../mnt')", True),
    ("os.stat('mnt/w', dir_fd=TREE_FD)", True),  # relative to a dirfd
    ("os.stat('../mnt/v', dir_fd=OTHER_FD)", True),
    ("os.lstat(f'{T}/dangling')", True),  # a dangling symlink into the prefix
    ("os.lstat('relative-dangling')", True),
    ("os.stat(f'/proc/self/cwd/mnt/q')", True),  # /proc/self is the tracee, not us
    ("os.stat(f'/dev/fd/{TREE_FD}/mnt/r')", True),
    ("os.stat(f'{T}/real.txt')", False),  # real files outside the prefix
    ("os.stat(f'{T}/out')", False),
    ("os.stat('real.txt')", False),
    ("os.stat(f'{T}/missing/deeper')", False),
    ("os.stat(f'{T}/mntx')", False),  # a string prefix, not a path prefix
    ("os.stat(f'{T}/mnt/hidden')", True),  # hidden real contents (canonical mode)
    ("os.stat(f'{T}/mnt/../real.txt')", None),  # either answer is right: .. leaves the mount
    ("os.stat('real.txt', dir_fd=TREE_FD)", False),
    ("os.stat('/dev/fuse')", "special"),  # special last component, wherever it is
    ("os.stat('/nowhere/fuse/')", "special"),
]


def _script(cases):
    body = [
        "T = os.getcwd()",
        "TREE_FD = os.open('.', os.O_RDONLY | os.O_DIRECTORY)",
        "OTHER_FD = os.open('other', os.O_RDONLY | os.O_DIRECTORY)",
        "barrier(-1)",  # start marker
    ]
    for call, _ in cases:
        body.append(f"try:\n    {call}\nexcept OSError:\n    pass")
    body.append("barrier(-1)")
    return "\n".join(body)


@pytest.fixture(params=["identity", "canonical"])
def mode(request, tree):
    """An empty mountpoint is judged by identity; one hiding real entries by name."""
    if request.param == "canonical":
        (tree / "mnt" / "hidden").write_text("hidden by the mount")
    return request.param


def test_watched_prefixes(tracer, tree, mode):
    tracer.set_prefixes([str(tree / "mnt")])
    tracer.set_special_names([b"fuse"])
    queued: list[tuple[str, int]] = []
    markers = []

    def handler(tracer, notification):
        if notification.nr == NR_TUXCALL:
            markers.append(len(queued))
            tracer.respond(notification.id, value=0)
        else:
            record_paths(queued)(tracer, notification)

    result = run_script(tracer, _script(CASES), handler, cwd=str(tree))
    assert result.exit_code == 0, result
    start, end = markers
    seen = {}
    for path, reason in queued[start:end]:
        seen.setdefault(path, reason)
    for call, outcome in CASES:
        literal = call.split("(", 1)[1].split("'")[1]
        literal = literal.replace("{T}", str(tree))
        if "{TREE_FD}" in literal:
            # the tracee's fd number: match by suffix
            matches = [p for p in seen if p.startswith("/dev/fd/") and p.endswith("/mnt/r")]
            assert matches if outcome else not matches, call
            continue
        if outcome is None:
            continue
        if outcome == "special":
            assert seen.get(literal) == _tracer.REASON_SPECIAL, call
        elif outcome:
            assert seen.get(literal) == _tracer.REASON_PATH, (call, seen)
        else:
            assert literal not in seen, (call, seen)


def test_empty_prefix_list_continues_everything_but_special_names(tracer, tree):
    tracer.set_special_names(["fuse"])
    queued: list[tuple[str, int]] = []
    result = run_script(
        tracer,
        "for p in ('mnt/x', 'real.txt', '/dev/fuse'):\n"
        "    try: os.stat(p)\n"
        "    except OSError: pass",
        record_paths(queued),
        cwd=str(tree),
    )
    assert result.exit_code == 0
    assert queued == [("/dev/fuse", _tracer.REASON_SPECIAL)]
    assert result.stats["queued_path"] == 0
    assert result.stats["fast_continue"] > 10


def test_virtual_socket_reached_by_path(tracer, tree):
    """/proc/self/fd/N and /dev/fd/N of a virtual socket reach Python even when the socket
    sits below the fd range (the prefix list just has to be non-empty)."""
    tracer.set_prefixes([str(tree / "mnt")])
    queued: list[tuple[str, int]] = []
    script = textwrap.dedent(
        """
        import socket
        a, b = socket.socketpair()
        barrier(a.fileno())
        for p in (f'/proc/self/fd/{a.fileno()}', f'/dev/fd/{a.fileno()}',
                  f'/proc/self/fd/{b.fileno()}'):
            os.stat(p)
        report(a.fileno(), b.fileno())
        """
    )
    result = run_script(tracer, script, record_paths(queued), cwd=str(tree))
    virtual, plain = map(int, result.lines[0].split())
    paths = {path for path, reason in queued if reason == _tracer.REASON_PATH}
    assert f"/proc/self/fd/{virtual}" in paths
    assert f"/dev/fd/{virtual}" in paths
    assert f"/proc/self/fd/{plain}" not in paths


def test_prefix_given_through_a_symlink(tracer, tree):
    tracer.set_prefixes([str(tree / "link") + "/"])
    queued: list[tuple[str, int]] = []
    run_script(
        tracer,
        "try: os.stat('mnt/inside')\nexcept OSError: pass",
        record_paths(queued),
        cwd=str(tree),
    )
    assert ("mnt/inside", _tracer.REASON_PATH) in queued


class TestPathRuleDirectly:
    """The resolver alone, applied to this test process (pid = ours)."""

    def test_cases(self, tracer, tree, mode):
        tracer.set_prefixes([str(tree / "mnt")])
        pid = os.getpid()
        watched = tracer._path_is_watched
        assert watched(pid, str(tree / "mnt" / "x" / "y"))
        assert not watched(pid, str(tree / "real.txt"))
        fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert watched(pid, "mnt/q", fd)
            assert watched(pid, "link", fd)
            assert not watched(pid, "out", fd)
            assert not watched(pid, "x", 12345)  # a closed dirfd: the kernel says EBADF
        finally:
            os.close(fd)

    def test_symlink_loop_and_long_names(self, tracer, tree, mode):
        tracer.set_prefixes([str(tree / "mnt")])
        (tree / "loop-a").symlink_to("loop-b")
        (tree / "loop-b").symlink_to("loop-a")
        pid = os.getpid()
        # A loop is conservatively watched or not, but must terminate.
        tracer._path_is_watched(pid, str(tree / "loop-a" / "x"))
        # A component over NAME_MAX: the kernel fails it anyway; asking Python is fine.
        tracer._path_is_watched(pid, str(tree / ("n" * 300)))
        assert tracer._path_is_watched(pid, str(tree / "mnt" / ("n" * 300)))
        assert tracer._path_is_watched(pid, "/" + "a/" * 3000)  # too long: ask Python

    def test_socket_dirfd(self, tracer, tree, mode):
        tracer.set_prefixes([str(tree / "mnt")])
        a, b = socket.socketpair()
        try:
            pid = os.getpid()
            assert not tracer._path_is_watched(pid, "", a.fileno())
            tracer.add_virtual_inode(os.fstat(a.fileno()).st_ino)
            assert tracer._path_is_watched(pid, "", a.fileno())
            tracer.remove_virtual_inode(os.fstat(a.fileno()).st_ino)
            assert not tracer._path_is_watched(pid, "", a.fileno())
        finally:
            a.close()
            b.close()

    def test_bad_configuration(self, tracer):
        with pytest.raises(ValueError):
            tracer.set_prefixes(["relative/path"])
        with pytest.raises(ValueError):
            tracer.set_special_names(["a/b"])


@pytest.mark.parametrize("empty_at_first", [True, False])
def test_prefix_with_real_contents_made_after_set_prefixes(tracer, tree, empty_at_first):
    """Like hypervisor's stand-in root: a watched directory, often empty when it is set,
    whose real subdirectories (made at any time, no new set_prefixes) serve as cwds;
    everything below it is watched, real files elsewhere on the same filesystem are not
    (and their negative answer is cached)."""
    stand_ins = tree / "stand-ins"
    stand_ins.mkdir()
    if not empty_at_first:
        (stand_ins / "0").mkdir()
    tracer.set_prefixes([str(tree / "mnt"), str(stand_ins)])
    (stand_ins / "0").mkdir(exist_ok=True)  # made later: no set_prefixes call
    (stand_ins / "1").mkdir()
    queued: list[tuple[str, int]] = []
    script = textwrap.dedent(
        f"""
        os.chdir({str(stand_ins / "1")!r})
        for p in ("x", ".", "../0", "../0/deeper/still", "../../real.txt", "../../other"):
            try: os.stat(p)
            except OSError: pass
        os.chdir({str(tree)!r})
        for p in ("real.txt", "real.txt", "other", "other"):
            os.stat(p)
        """
    )
    result = run_script(tracer, script, record_paths(queued), cwd=str(tree))
    assert result.exit_code == 0
    paths = [path for path, reason in queued if reason == _tracer.REASON_PATH]
    # From a base inside the watched tree every relative path is Python's, even one that
    # leaves it for a real file ("../../real.txt" is not where the virtual walk goes).
    for expected in ("x", ".", "../0", "../0/deeper/still", "../../real.txt", "../../other"):
        assert expected in paths
    assert "real.txt" not in paths and "other" not in paths


def test_prefix_without_real_directory(tracer, tree):
    tracer.set_prefixes([str(tree / "ghost")])
    queued: list[tuple[str, int]] = []
    script = (
        "for p in (f'{os.getcwd()}/ghost/a', 'ghost/b', 'ghost', 'real.txt'):\n"
        "    try: os.stat(p)\n"
        "    except OSError: pass"
    )
    run_script(tracer, script, record_paths(queued), cwd=str(tree))
    paths = {path for path, reason in queued if reason == _tracer.REASON_PATH}
    assert {f"{tree}/ghost/a", "ghost/b", "ghost"} <= paths
    assert "real.txt" not in paths


def test_bad_path_pointers_get_the_kernels_answer(tracer, tree):
    """Unreadable or unterminated paths are CONTINUEd: the kernel fails them itself."""
    tracer.set_prefixes([str(tree / "mnt")])
    tracer.set_special_names(["fuse"])
    script = textwrap.dedent(
        """
        import errno, mmap
        statbuf = ctypes.create_string_buffer(256)
        area = mmap.mmap(-1, 8192)
        base = ctypes.addressof(ctypes.c_char.from_buffer(area))
        area[:] = b"a" * 8192                       # no NUL before the unmapped page
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.munmap(ctypes.c_void_p(base + 4096), 4096)
        results = []
        for pointer in (0, 1, 2**47 + 5, base + 10, base + 4095):
            value = libc.syscall(4, ctypes.c_void_p(pointer), statbuf)   # stat(2)
            results.append(errno.errorcode.get(ctypes.get_errno(), "?") if value else "ok")
        long_path = ctypes.create_string_buffer(b"/" + b"x/" * 3000)
        libc.syscall(4, long_path, statbuf)
        results.append(errno.errorcode.get(ctypes.get_errno(), "?"))
        report(*results)
        """
    )
    result = run_script(tracer, script, cwd=str(tree))
    assert result.lines == ["EFAULT EFAULT EFAULT EFAULT EFAULT ENAMETOOLONG"]
    assert result.stats["queued_path"] == 0


def test_tracee_killed_while_waiting(tracer):
    """A tracee that dies with a queued notification: respond() raises ENOENT, nothing
    else happens."""
    errors = []

    def handler(tracer, notification):
        if notification.nr == NR_TUXCALL:
            os.kill(notification.pid, 9)
            for _ in range(200):
                if not tracer.id_valid(notification.id):
                    break
                time.sleep(0.005)
            try:
                tracer.respond(notification.id, value=1)
            except OSError as error:
                errors.append(error.errno)
        else:
            tracer.respond(notification.id, continue_=True)

    result = run_script(tracer, "barrier()", handler)
    assert os.WIFSIGNALED(result.status) and os.WTERMSIG(result.status) == 9
    assert errors == [errno.ENOENT]
