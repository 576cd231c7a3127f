"""Read-write daemons from Debian's packages, unmodified (issue 5's "must show" list).

Every test runs a bash script inside one `vufuse run` session, as whoever runs the suite (the
ordinary user vufuse-test under ``make test``: no /dev/fuse for it), and checks what the daemon
left behind against the same operations on a real directory, or against what a second mount of
the same storage shows.  ``snapshot`` (trees.py) lists names, modes, sizes, link targets and an
md5 of every regular file.  Writes into the mount go mostly through programs that open files
themselves (python3, cp, tar); a shell ``>`` onto a low fd takes the stand-in road (D7).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ehelp import REPO, Sessions
from trees import SNAPSHOT, make_tree

pytestmark = pytest.mark.e2e

#: Real source files beside the generated tree (tar xf of a real tree).
REPO_DIRS = ("vufuse", "hypervisor", "csrc", "docs", "examples")


def _need(*programs: str) -> None:
    for program in programs:
        if shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            pytest.skip(f"{program} is not installed (compat-tests/setup.sh installs it)")


def _tree_tar(root: Path, symlinks: bool = True, hard_link: bool = True) -> Path:
    """tree.tar in `root`: make_tree's tree (with its symlinks and its hard link unless told
    otherwise) and a copy of some of this repository's own directories under tree/repo."""
    tree = make_tree(root, hard_link=hard_link)
    if not symlinks:
        for path in tree.rglob("*"):
            if path.is_symlink():
                path.unlink()
    repo = tree / "repo"
    repo.mkdir()
    subprocess.run(
        f"tar -C {REPO} -cf - --exclude=__pycache__ --exclude='*.so' {' '.join(REPO_DIRS)}"
        f" | tar -C {repo} -xf -", shell=True, check=True)  # fmt: skip
    tar = root / "tree.tar"
    subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "tree"], check=True)
    shutil.rmtree(tree)
    return tar


#: `edit DIR`: changes to the tree DIR/tree, run the same on a real directory and the mount.
EDIT = r"""
edit() (
    cd "$1/tree" || exit 1
    python3 - <<'PY' || exit 1
import os
with open("README.txt", "a") as f:
    f.write("appended\n")
fd = os.open("sub/big.bin", os.O_RDWR)
os.pwrite(fd, b"X" * 10000, 1000000)
os.close(fd)
os.truncate("sub/deeper/notes.txt", 100)
with open("new.bin", "wb") as f:
    for i in range(48):
        f.write(bytes([i]) * 65536)
PY
    mv run.sh ran.sh && chmod 600 group.txt && rm hard-readme && mv sub/deeper moved \
        && rm -r mpkg && mkdir -p made/a/b && cp -r repo/docs made/a/b/
)
"""


#: `writers DIR`: four processes at once, each extracting a part of the tree into DIR/parN,
#: copying it and removing part of the copy.
WRITERS = r"""
writers() (
    for n in 1 2 3 4; do
        (mkdir "$1/par$n" && tar -C "$1/par$n" -xf tree.tar tree/repo/vufuse && cp -r \
            "$1/par$n/tree/repo/vufuse" "$1/par$n/copy" && rm -r "$1/par$n/copy/devfuse" \
            && echo "writer $n ok") &
    done
    wait
)
"""

#: Seconds a daemon gets to show its mount (wait_mounted's 10 s is short for sshfs's login on
#: a loaded machine), and a session to finish.
MOUNT_WAIT = 60
SESSION_TIMEOUT = 240.0

#: `wait_mount DIR`: wait_mounted with a bound of MOUNT_WAIT seconds.
WAIT_MOUNT = r"""
wait_mount() {
    for _ in $(seq TRIES); do
        grep -q " $1 " /proc/self/mounts && return 0
        sleep 0.05
    done
    echo "TIMEOUT waiting for $1 to be mounted"; return 1
}
""".replace("TRIES", str(MOUNT_WAIT * 20))


def test_fuse2fs_ext4_image(sessions: Sessions) -> None:
    """fuse2fs on an ext4 image mkfs.ext4 made on a plain file: tar xf of a real tree, edits,
    four writers at once; the mount shows what a real directory shows after the same; after
    unmounting, `e2fsck -fn` finds the image clean; a second mount shows the same tree, every
    checksum.  (mkfs.ext4 gives the root directory to the user: fuse2fs checks permissions
    itself.  No `cp -a`: it sets a copy's mode by an ACL xattr, which fuse2fs stores without
    changing the mode -- so does the kernel, with no FUSE_POSIX_ACL.)"""
    _need("fuse2fs", "mkfs.ext4", "e2fsck")
    _tree_tar(sessions.root)
    run = sessions.run(SNAPSHOT + EDIT + WRITERS + WAIT_MOUNT + """\
mkfs.ext4 -q -F -E root_owner=$(id -u):$(id -g) image.ext4 64M || exit 1
mkdir -p mnt ref/top && tar -C ref/top -xf tree.tar && edit ref/top && writers ref/top \
    >/dev/null || exit 1
snapshot ref/top >ref.snap 2>&1
mount_it() {
    fuse2fs -f image.ext4 "$PWD/mnt" 2>>daemon.err &
    daemon=$!
    wait_mount "$PWD/mnt" || { cat daemon.err; exit 1; }
}
unmount_it() {
    fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
    wait $daemon; echo "daemon rc=$?"
}
mount_it
mkdir mnt/top && tar -C mnt/top -xf tree.tar; echo "tar rc=$?"
edit mnt/top; echo "edit rc=$?"
writers mnt/top
snapshot mnt/top >first.snap 2>&1
diff ref.snap first.snap && echo "first mount: same as the real directory"
unmount_it
e2fsck -fn image.ext4 >fsck.out 2>&1; echo "e2fsck rc=$?"
cat fsck.out
mount_it
snapshot mnt/top >second.snap 2>&1
diff ref.snap second.snap && echo "second mount: same as the real directory"
unmount_it
grep -c . ref.snap
""", timeout=SESSION_TIMEOUT)
    output, lines = run.output, run.lines()
    assert run.status == 0, output
    for line in ("tar rc=0", "edit rc=0", "first mount: same as the real directory",
                 "e2fsck rc=0", "second mount: same as the real directory",
                 "writer 1 ok", "writer 2 ok", "writer 3 ok", "writer 4 ok"):
        assert line in lines, output
    assert lines.count("unmount rc=0") == 2 and lines.count("daemon rc=0") == 2, output
    assert int(lines[-1]) > 1000, output  # the listings were not empty


#: `work DIR`: a read-write workload on a copy of the tree at DIR (a real directory, or a
#: mount over a copy of it: the union daemons copy up from the lower layer, whiteout what is
#: removed there, make a directory made again opaque).  It prints what it saw.
WORK = r"""
work() (
    cd "$1" || exit 1
    python3 - <<'PY' || exit 1
import os
with open("README.txt", "a") as f:
    f.write("appended\n")
fd = os.open("sub/big.bin", os.O_RDWR)
os.pwrite(fd, b"X" * 10000, 1000000)
os.close(fd)
os.truncate("sub/deeper/notes.txt", 100)
fd = os.open("new.txt", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
os.write(fd, b"new\n")
os.close(fd)
try:
    os.open("new.txt", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except FileExistsError:
    print("O_EXCL: EEXIST")
with open("new.txt", "r+") as f:
    f.seek(0, os.SEEK_END)
    f.write("more\n")
fd = os.open("empty", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"no longer empty\n")
os.close(fd)
PY
    chmod 600 group.txt && chmod 700 run.sh && mv run.sh ran.sh && ./ran.sh \
        && mv sub/deeper/deepest/leaf leaf-moved && rm -f hard-readme && rm private/secret \
        && rmdir emptydir private && mv mpkg mpkg2 && ln -s ran.sh link-new \
        && ln new.txt new-hard && mkdir x && tar -C x -xf ../tree.tar && cp -a x x-copy \
        && rm -r x-copy/tree/sub && rm -r sub/deeper && mkdir sub/deeper \
        && cp README.txt sub/deeper/again && touch -h -d 2001-02-03T04:05:06 new.txt || exit 1
    stat -c '%A %s %h %n' README.txt new.txt new-hard ran.sh group.txt empty | sort -k4
    stat -c '%Y %n' new.txt
    cat new-hard empty sub/deeper/again
    ls sub/deeper mpkg2
    find . | sort | md5sum
)
"""

#: How each union daemon is started on mnt over lower/ (upper/, work/ start empty).
UNION_DAEMONS = {
    "bindfs": 'bindfs -f "$PWD/lower" "$PWD/mnt"',
    "unionfs-fuse": 'unionfs -f -o cow,hide_meta_files "$PWD/upper=RW:$PWD/lower=RO" "$PWD/mnt"',
    "fuse-overlayfs": ('fuse-overlayfs -f -o lowerdir="$PWD/lower",upperdir="$PWD/upper",'
                       'workdir="$PWD/work" "$PWD/mnt"'),
}


@pytest.mark.parametrize("daemon", sorted(UNION_DAEMONS))
def test_union_daemon_workload(sessions: Sessions, daemon: str) -> None:
    """bindfs, unionfs-fuse (-o cow) and fuse-overlayfs over a copy of the tree: the same
    workload on a real copy and on the mount prints the same and leaves the same tree (names,
    modes, sizes, link targets, checksums).  bindfs writes through to its source, which ends
    equal to the real copy; the union daemons leave their lower layer untouched, and a second
    mount over the same layers shows the changed tree again.

    unionfs-fuse keeps its whiteouts in a .unionfs-fuse directory that `hide_meta_files`
    hides (without it the mount lists it, on the kernel too).  fuse-overlayfs gets no hard
    link in its lower layer: it gives both names one node but copies up only the name written
    through, so the two names no longer show one file -- unlike a real directory, on the
    kernel too (with its writeback cache a `cp` of the appended name copies the old bytes;
    test_writeback_cache.py pins that case against the kernel's own output)."""
    _need({"unionfs-fuse": "unionfs"}.get(daemon, daemon))
    _tree_tar(sessions.root, hard_link=daemon != "fuse-overlayfs")
    run = sessions.run(SNAPSHOT + WORK + WAIT_MOUNT + f"""\
mkdir -p ref lower upper work mnt
tar -C ref -xf tree.tar --strip-components=1 && tar -C lower -xf tree.tar --strip-components=1 \
    || exit 1
snapshot lower >lower-before.snap 2>&1
mount_it() {{
    {UNION_DAEMONS[daemon]} 2>>daemon.err &
    daemon=$!
    wait_mount "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
}}
unmount_it() {{
    fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
    wait $daemon; echo "daemon rc=$?"
}}
mount_it
work "$PWD/ref" >ref.out 2>&1; echo "ref rc=$?"
work "$PWD/mnt" >mnt.out 2>&1; echo "mnt rc=$?"
diff ref.out mnt.out && echo "same output"
snapshot ref >ref.snap 2>&1
snapshot mnt >mnt.snap 2>&1
diff ref.snap mnt.snap && echo "same tree"
unmount_it
if [ {daemon} = bindfs ]; then
    snapshot lower >after.snap 2>&1
    diff ref.snap after.snap && echo "source: same tree"
else
    snapshot lower >after.snap 2>&1
    diff lower-before.snap after.snap && echo "lower: untouched"
    mount_it
    snapshot mnt >again.snap 2>&1
    diff ref.snap again.snap && echo "second mount: same tree"
    unmount_it
fi
cat mnt.out
grep -c . ref.snap
""", timeout=SESSION_TIMEOUT)
    output, lines = run.output, run.lines()
    assert run.status == 0, output
    for line in ("ref rc=0", "mnt rc=0", "same output", "same tree", "O_EXCL: EEXIST", "ran",
                 "unmount rc=0", "daemon rc=0"):
        assert line in lines, output
    if daemon == "bindfs":
        assert "source: same tree" in lines, output
    else:
        assert "lower: untouched" in lines and "second mount: same tree" in lines, output
        assert lines.count("unmount rc=0") == 2 and lines.count("daemon rc=0") == 2, output
    assert int(lines[-1]) > 300, output


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An sshd of our own on 127.0.0.1, run as whoever runs the suite, outside any session:
    a generated host key, one generated user key it accepts, a free port.  Yields the
    ssh_config that reaches it as host ``vufuse-sshd``; killed by its pid afterwards."""
    _need("sshfs", "ssh-keygen", "/usr/sbin/sshd")
    keys = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "id_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)],
                       check=True)
    shutil.copy(keys / "id_ed25519.pub", keys / "authorized_keys")
    port = _free_loopback_port()
    config = keys / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nAllowTcpForwarding no\nX11Forwarding no\nLogLevel ERROR\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n")  # fmt: skip
    (keys / "ssh_config").write_text(
        f"Host vufuse-sshd\n  HostName 127.0.0.1\n  Port {port}\n"
        f"  User {pwd.getpwuid(os.getuid()).pw_name}\n  IdentityFile {keys / 'id_ed25519'}\n"
        "  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        "  BatchMode yes\n  LogLevel ERROR\n")  # fmt: skip
    log = keys / "sshd.log"
    with log.open("wb") as err:
        process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                   stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                   start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"sshd exited with {process.returncode}: {log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"sshd did not listen on port {port} in 20 s: {log.read_text()}")
                time.sleep(0.1)
        yield keys / "ssh_config"
    finally:
        os.killpg(process.pid, 9)  # sshd and its per-connection children
        process.wait()


#: `files DIR`: create, append, rename, chmod, and the like, run on the real directory and on
#: the sshfs mount of a copy of it; prints what it saw.
FILES = r"""
files() (
    cd "$1" || exit 1
    python3 - <<'PY' || exit 1
import os
fd = os.open("created", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, b"one\n")
os.close(fd)
with open("created", "a") as f:
    f.write("two\n")
fd = os.open("created", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"three\n")
print("append at", os.lseek(fd, 0, os.SEEK_CUR))
os.close(fd)
with open("big", "wb") as f:
    for i in range(40):
        f.write(bytes([i]) * 50000)
os.truncate("big", 1234567)
PY
    mv created renamed && printf 'four\n' >>renamed && chmod 600 renamed && chmod 751 big \
        && mkdir -p d/e && cp renamed d/e/copy && ln -s renamed sym && mv d moved \
        && tar -C moved -xf ../tree.tar && rm -r moved/tree/sub && rmdir moved/tree/emptydir \
        || exit 1
    stat -c '%A %s %n' renamed big sym moved/e/copy
    cat renamed && readlink sym && md5sum big
    find . | sort | md5sum
)
"""


def test_sshfs_file_operations(sessions: Sessions, sshd: Path) -> None:
    """sshfs to our sshd on 127.0.0.1: create, append (also by a shell `>>`), rename, chmod,
    mkdir, symlink, tar xf, rm -r through the mount print and leave what they do on a real
    directory, and the remote directory ends the same.  The tar holds no symlink: SFTP's
    SETSTAT follows links, so tar can't set a link's times through sshfs (ENOENT for a
    dangling one, on the kernel too)."""
    _tree_tar(sessions.root, symlinks=False, hard_link=False)
    run = sessions.run(SNAPSHOT + FILES + WAIT_MOUNT + f"""\
mkdir -p ref remote mnt
sshfs -f -F {sshd} "vufuse-sshd:$PWD/remote" "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mount "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
files "$PWD/ref" >ref.out 2>&1; echo "ref rc=$?"
files "$PWD/mnt" >mnt.out 2>&1; echo "mnt rc=$?"
diff ref.out mnt.out && echo "same output"
snapshot ref >ref.snap 2>&1
snapshot mnt >mnt.snap 2>&1
snapshot remote >remote.snap 2>&1
diff ref.snap mnt.snap && echo "same tree"
diff ref.snap remote.snap && echo "remote: same tree"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
cat mnt.out
""", timeout=SESSION_TIMEOUT)
    lines = run.lines()
    assert run.status == 0, run.output
    for line in ("ref rc=0", "mnt rc=0", "same output", "same tree", "remote: same tree",
                 "append at 14", "-rw------- 19 renamed", "-rwxr-x--x 1234567 big",
                 "unmount rc=0", "daemon rc=0"):
        assert line in lines, run.output


def test_sshfs_git(sessions: Sessions, sshd: Path) -> None:
    """`git init && git add && git commit` inside an sshfs mount; git fsck is clean and the
    remote directory holds the same repository."""
    run = sessions.run(WAIT_MOUNT + f"""\
mkdir -p remote mnt
sshfs -f -F {sshd} "vufuse-sshd:$PWD/remote" "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mount "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t \\
    GIT_COMMITTER_EMAIL=t@example.org GIT_CONFIG_NOSYSTEM=1 HOME=$PWD
(
    cd mnt || exit 1
    mkdir project && cd project && git init -q && cp -r {REPO / "docs"} docs \\
        && python3 -c 'open("README","w").write("hello\\n")' && git add . \\
        && git commit -q -m first && echo "commit rc=$?" \\
        && python3 -c 'open("README","a").write("again\\n")' && git commit -q -a -m second \\
        && git log --format=%s && test -z "$(git status --porcelain)" \\
        && git fsck --no-progress && echo "git ok"
)
echo "== remote"
git -C remote/project log --format=%s && git -C remote/project fsck --no-progress \\
    && git -C remote/project diff --quiet HEAD && echo "remote ok"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
""", timeout=SESSION_TIMEOUT)
    lines = run.lines()
    assert run.status == 0, run.output
    for line in ("commit rc=0", "git ok", "remote ok", "unmount rc=0", "daemon rc=0"):
        assert line in lines, run.output
    assert lines[lines.index("== remote") + 1:][:2] == ["second", "first"], run.output


#: `write_through DIR`: files written through a mount by tar, cp and python3.
WRITE_THROUGH = r"""
write_through() (
    cd "$1" || exit 1
    tar -xf ../tree.tar && mkdir copies && cp tree/README.txt tree/sub/big.bin copies/ \
        && mv copies/big.bin copies/renamed.bin || exit 1
    python3 - <<'PY' || exit 1
with open("written.bin", "wb") as f:
    for i in range(100):
        f.write(bytes([i]) * 40000)
PY
)
"""


def test_gocryptfs_two_mounts(sessions: Sessions) -> None:
    """gocryptfs -init, then a mount (go-fuse execs fusermount3): a tree written through it
    (tar, cp, python3) and edited (appends, a write into the middle of an encrypted block, a
    truncate, renames), unmounted, shows the same through a second mount, as on a real
    directory; the cipher directory holds none of the plain names."""
    _need("gocryptfs")
    _tree_tar(sessions.root)
    run = sessions.run(SNAPSHOT + WRITE_THROUGH + EDIT + WAIT_MOUNT + """\
mkdir -p ref cipher mnt
write_through "$PWD/ref" && edit "$PWD/ref" && snapshot ref >ref.snap 2>&1 || exit 1
gocryptfs -init -q -scryptn 10 -extpass "echo secret words" cipher; echo "init rc=$?"
mount_it() {
    gocryptfs -fg -q -extpass "echo secret words" cipher "$PWD/mnt" 2>>daemon.err &
    daemon=$!
    wait_mount "$PWD/mnt" || { cat daemon.err; exit 1; }
}
unmount_it() {
    fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
    wait $daemon; echo "daemon rc=$?"
}
mount_it
write_through "$PWD/mnt"; echo "write rc=$?"
edit "$PWD/mnt"; echo "edit rc=$?"
snapshot mnt >first.snap 2>&1
diff ref.snap first.snap && echo "first mount: same as the real directory"
unmount_it
find cipher | grep -c -e README -e big.bin -e written
mount_it
snapshot mnt >second.snap 2>&1
diff ref.snap second.snap && echo "second mount: same as the real directory"
unmount_it
""", timeout=SESSION_TIMEOUT)
    lines = run.lines()
    assert run.status == 0, run.output
    for line in ("init rc=0", "write rc=0", "edit rc=0", "first mount: same as the real directory",
                 "second mount: same as the real directory"):
        assert line in lines, run.output
    assert lines[lines.index("daemon rc=0") + 1] == "0", run.output  # no plain name in cipher
    assert lines.count("unmount rc=0") == 2 and lines.count("daemon rc=0") == 2, run.output


#: `contents DIR`: what rclone's local remote keeps: directories and regular files' bytes.
CONTENTS = r"""
contents() (
    cd "$1" || exit 1
    find . -type d | sort
    find . -type f -exec md5sum {} + | sort -k 2
)
"""


def test_rclone_mount_two_mounts(sessions: Sessions) -> None:
    """`rclone mount` of a local remote (bazil fuse execs fusermount, Debian's fuse3 link):
    files written through it land in the remote directory, and a second mount reads them
    all back.  rclone keeps no symlinks, hard links or modes: the tree has no links, and
    directories and file contents are compared.  --vfs-cache-mode off writes straight to the
    remote: with a cache, rclone uploads after a delay and an unmount leaves the files in its
    cache (the kernel shows the same)."""
    _need("rclone", "fusermount")
    _tree_tar(sessions.root, symlinks=False, hard_link=False)
    run = sessions.run(CONTENTS + WRITE_THROUGH + WAIT_MOUNT + """\
mkdir -p ref remote mnt
write_through "$PWD/ref" && contents ref >ref.list 2>&1 || exit 1
mount_it() {
    rclone mount --config /dev/null --cache-dir "$PWD/cache" --vfs-cache-mode off \\
        "$PWD/remote" "$PWD/mnt" 2>>daemon.err &
    daemon=$!
    wait_mount "$PWD/mnt" || { cat daemon.err; exit 1; }
}
unmount_it() {
    fusermount -u "$PWD/mnt"; echo "unmount rc=$?"
    wait $daemon; echo "daemon rc=$?"
}
mount_it
write_through "$PWD/mnt"; echo "write rc=$?"
contents mnt >first.list 2>&1
diff ref.list first.list && echo "first mount: same as the real directory"
unmount_it
contents remote >remote.list 2>&1
diff ref.list remote.list && echo "remote: same as the real directory"
mount_it
contents mnt >second.list 2>&1
diff ref.list second.list && echo "second mount: same as the real directory"
unmount_it
grep -c . ref.list
""", timeout=SESSION_TIMEOUT)
    lines = run.lines()
    assert run.status == 0, run.output
    for line in ("write rc=0", "first mount: same as the real directory",
                 "remote: same as the real directory", "second mount: same as the real directory"):
        assert line in lines, run.output
    assert lines.count("unmount rc=0") == 2 and lines.count("daemon rc=0") == 2, run.output
    assert int(lines[-1]) > 100, run.output


def test_mv_between_two_daemons_and_the_real_filesystem(sessions: Sessions) -> None:
    """rename(2) between a bindfs mount, a fuse2fs mount and the real filesystem is EXDEV,
    so `mv` copies and removes; link(2) across them fails EXDEV; every byte arrives."""
    _need("bindfs", "fuse2fs", "mkfs.ext4")
    _tree_tar(sessions.root)
    run = sessions.run(SNAPSHOT + WAIT_MOUNT + """\
mkfs.ext4 -q -F -E root_owner=$(id -u):$(id -g) image.ext4 32M || exit 1
mkdir -p backing src ext real && tar -C real -xf tree.tar && snapshot real/tree >before.snap 2>&1
bindfs -f "$PWD/backing" "$PWD/src" 2>>daemon.err &
bind=$!
fuse2fs -f image.ext4 "$PWD/ext" 2>>daemon.err &
ext=$!
wait_mount "$PWD/src" && wait_mount "$PWD/ext" || { cat daemon.err; exit 1; }
mv real/tree src/ && mv src/tree ext/ && mv ext/tree real/ && echo "mv round trip ok"
test -e src/tree || test -e ext/tree || echo "sources removed"
snapshot real/tree >after.snap 2>&1
diff before.snap after.snap && echo "same tree"
python3 - <<'PY'
import errno, os
os.makedirs("src/d")
with open("src/d/f", "w") as f:
    f.write("x")
for source, target in (("src/d/f", "ext/f"), ("src/d/f", "real/f"), ("real/tree/README.txt",
                                                                   "src/r")):
    for call in (os.rename, os.link):
        try:
            call(source, target)
        except OSError as exc:
            print(call.__name__, source, target, errno.errorcode[exc.errno])
PY
fusermount3 -u "$PWD/src"; echo "unmount rc=$?"
wait $bind; echo "daemon rc=$?"
fusermount3 -u "$PWD/ext"; echo "unmount rc=$?"
wait $ext; echo "daemon rc=$?"
""", timeout=SESSION_TIMEOUT)
    lines = run.lines()
    assert run.status == 0, run.output
    for line in ("mv round trip ok", "sources removed", "same tree",
                 "rename src/d/f ext/f EXDEV", "link src/d/f ext/f EXDEV",
                 "rename src/d/f real/f EXDEV", "link src/d/f real/f EXDEV",
                 "rename real/tree/README.txt src/r EXDEV",
                 "link real/tree/README.txt src/r EXDEV"):
        assert line in lines, run.output
    assert lines.count("unmount rc=0") == 2 and lines.count("daemon rc=0") == 2, run.output


def test_mounts_inside_mounts(sessions: Sessions, sshd: Path) -> None:
    """A mount inside a mount (issue 6): a squashfs image stored on an sshfs mount, served by
    squashfuse reading it through that mount, and unionfs-fuse (-o cow) over two mounts --
    the squashfuse mount as its read-only lower layer, a directory on the sshfs mount as its
    upper one: three daemons stacked.  The image lists what it was made from; a write through
    the union is copied up onto the sshfs mount and lands in the remote directory."""
    _need("squashfuse", "mksquashfs", "unionfs")
    _tree_tar(sessions.root, symlinks=True, hard_link=False)
    run = sessions.run(SNAPSHOT + WAIT_MOUNT + f"""\
mkdir -p ref remote/upper mnt sq union
tar -C ref -xf tree.tar --strip-components=1 || exit 1
mksquashfs ref remote/image.sqfs -quiet -no-progress >/dev/null || exit 1
sshfs -f -F {sshd} "vufuse-sshd:$PWD/remote" "$PWD/mnt" 2>sshfs.err &
ssh_daemon=$!
wait_mount "$PWD/mnt" || {{ cat sshfs.err; exit 1; }}
squashfuse -f mnt/image.sqfs "$PWD/sq" 2>squash.err &
squash_daemon=$!
wait_mount "$PWD/sq" || {{ cat squash.err; exit 1; }}
(cd ref && find . -type f -exec md5sum {{}} + | sort) >ref.sums
(cd sq && find . -type f -exec md5sum {{}} + | sort) >sq.sums
diff ref.sums sq.sums && echo "squashfs on sshfs: same files ($(wc -l <sq.sums))"
unionfs -f -o cow,hide_meta_files "$PWD/mnt/upper=RW:$PWD/sq=RO" "$PWD/union" 2>union.err &
union_daemon=$!
wait_mount "$PWD/union" || {{ cat union.err; exit 1; }}
(cd union && find . -type f -exec md5sum {{}} + | sort) >union.sums
diff ref.sums union.sums && echo "union: same files"
first=$(cd ref && find . -type f -perm -u+w | sort | head -1)
python3 -c 'import sys; open(sys.argv[1], "a").write("appended\\n")' "union/$first" \\
    && echo "appended through the union"
python3 -c 'open("union/new-file", "w").write("new\\n")'
echo "remote upper: $(cat remote/upper/new-file) $(tail -1 "remote/upper/$first")"
echo "lower untouched: $(tail -c 9 "sq/$first" | tr -d '\\n' | grep -c appended)"
grep " $PWD/" /proc/self/mounts | cut -d' ' -f3 | sort | tr '\\n' ' '; echo
# Each daemon holds files of the mount below until it exits (EBUSY before, as on the kernel).
fusermount3 -u "$PWD/union"; echo "unmount union rc=$?"
wait $union_daemon; echo "union rc=$?"
fusermount3 -u "$PWD/sq"; echo "unmount sq rc=$?"
wait $squash_daemon; echo "squashfuse rc=$?"
fusermount3 -u "$PWD/mnt"; echo "unmount mnt rc=$?"
wait $ssh_daemon; echo "sshfs rc=$?"
""", timeout=SESSION_TIMEOUT)
    lines = run.lines()
    assert run.status == 0, run.output
    for line in ("union: same files", "appended through the union",
                 "remote upper: new appended", "lower untouched: 0",
                 "unmount union rc=0", "unmount sq rc=0", "unmount mnt rc=0",
                 "union rc=0", "squashfuse rc=0", "sshfs rc=0"):
        assert line in lines, run.output
    assert any(line.startswith("squashfs on sshfs: same files (") for line in lines), run.output
