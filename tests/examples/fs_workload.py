"""One workload of real commands and Python file operations, run on a mount and on a real directory.

`build_source` makes a small but varied tree (empty and 1.5 MB files, nested directories,
relative and absolute symlinks, a hard link, a fifo, odd modes, an xattr). `exercise` copies it
with ``cp -a`` and ``tar``, then works on the result through os/shutil: appends, truncation,
renames including RENAME_NOREPLACE and RENAME_EXCHANGE, links, chmod, utime, xattrs, an unlinked
file still open, expected failures. It returns what it observed along the way. `snapshot`
describes a tree through ``find``, ``ls -lnR``, ``stat`` and a ``tar`` listing, so two runs
compare with ``==``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

FIXED_TIME = 1_700_000_000
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    """Run a command, fail on a non-zero exit, return its stdout."""
    result = subprocess.run(
        [str(arg) for arg in argv], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result.stdout


def renameat2(old: Path, new: Path, flags: int) -> int:
    """renameat2(2); returns 0 or the errno."""
    if _libc.renameat2(-100, bytes(old), -100, bytes(new), ctypes.c_uint(flags)) == 0:
        return 0
    return ctypes.get_errno()


def build_source(source: Path) -> None:
    """The tree that the workload copies in."""
    source.mkdir()
    (source / "empty").write_bytes(b"")
    (source / "small.txt").write_text("small file\n")
    (source / "big.bin").write_bytes(random.Random(7).randbytes(1_500_000))
    (source / "dir" / "sub").mkdir(parents=True)
    (source / "dir" / "sub" / "deep.txt").write_text("deep\n" * 1000)
    (source / "dir" / "empty-dir").mkdir()
    os.symlink("small.txt", source / "link")
    os.symlink("/nonexistent/target", source / "dir" / "dangling")
    os.link(source / "small.txt", source / "small-hardlink")
    os.mkfifo(source / "pipe")
    (source / "secret").write_text("secret\n")
    os.chmod(source / "secret", 0o600)
    (source / "script.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(source / "script.sh", 0o755)
    os.chmod(source / "dir" / "empty-dir", 0o2750)
    os.setxattr(source / "small.txt", "user.colour", b"blue")
    run("touch", "-h", "-d", f"@{FIXED_TIME - 1000}", *sorted(source.rglob("*")))


def _errno_of(action: object) -> int:
    try:
        action()  # type: ignore[operator]
    except OSError as exc:
        return exc.errno or -1
    return 0


def exercise(root: Path, source: Path, tarball: Path) -> list[object]:
    """Do the workload under *root*; returns the observations to compare."""
    seen: list[object] = []
    run("cp", "-a", source, root / "copy")
    (root / "untar").mkdir()
    run("tar", "-C", root / "untar", "-xpf", tarball)

    work = root / "py"
    work.mkdir()
    log = work / "log.txt"
    with open(log, "w") as out:
        out.write("first line\n")
    with open(log, "a") as out:
        out.write("appended\n")
    seen.append(log.read_text())
    data = work / "data.bin"
    data.write_bytes(bytes(range(256)) * 64)
    os.truncate(data, 20_000)
    seen.append(hashlib.sha256(data.read_bytes()).hexdigest())
    with open(data, "r+b") as handle:
        os.ftruncate(handle.fileno(), 1000)
        handle.seek(5000)
        handle.write(b"after a hole")
    seen.append(hashlib.sha256(data.read_bytes()).hexdigest())

    (work / "a").write_text("A")
    (work / "b").write_text("B")
    seen.append(renameat2(work / "a", work / "b", RENAME_NOREPLACE))
    seen.append(renameat2(work / "a", work / "b", RENAME_EXCHANGE))
    seen.append(((work / "a").read_text(), (work / "b").read_text()))
    seen.append(renameat2(work / "a", work / "c", RENAME_NOREPLACE))
    os.replace(work / "c", work / "b")
    os.rename(root / "copy" / "dir" / "sub", root / "copy" / "moved-sub")
    seen.append(_errno_of(lambda: os.rename(root / "copy", root / "copy" / "inside")))
    seen.append(_errno_of(lambda: os.rmdir(root / "copy" / "moved-sub")))

    os.link(work / "b", work / "b-link")
    os.symlink("b", work / "b-symlink")
    seen.append((os.readlink(work / "b-symlink"), os.stat(work / "b").st_nlink))
    os.unlink(work / "b-link")
    seen.append(os.stat(work / "b").st_nlink)
    os.chmod(work / "b", 0o4711)
    seen.append(oct(os.stat(work / "b").st_mode))
    os.utime(work / "b", ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    seen.append((os.stat(work / "b").st_atime_ns, os.stat(work / "b").st_mtime_ns))

    os.setxattr(work / "b", "user.one", b"1")
    os.setxattr(work / "b", "user.two", b"22")
    seen.append(_errno_of(lambda: os.setxattr(work / "b", "user.one", b"x", os.XATTR_CREATE)))
    seen.append(_errno_of(lambda: os.setxattr(work / "b", "user.new", b"x", os.XATTR_REPLACE)))
    os.removexattr(work / "b", "user.two")
    seen.append((sorted(os.listxattr(work / "b")), os.getxattr(work / "b", "user.one")))
    seen.append(_errno_of(lambda: os.getxattr(work / "b", "user.missing")))

    with open(work / "doomed", "w+") as handle:
        handle.write("still here")
        os.unlink(work / "doomed")
        handle.write(", after unlink")
        handle.seek(0)
        seen.append(handle.read())
    seen.append(_errno_of(lambda: os.stat(work / "doomed")))

    shutil.copytree(
        root / "copy", root / "tree2", symlinks=True, ignore=shutil.ignore_patterns("pipe")
    )
    shutil.rmtree(root / "tree2" / "dir")
    os.mkfifo(work / "fifo", 0o640)
    seen.append(sorted(os.listdir(root / "tree2")))
    seen.append(_errno_of(lambda: os.mkdir(work)))
    seen.append(_errno_of(lambda: os.unlink(work / "missing")))
    seen.append(_errno_of(lambda: os.rmdir(work / "b")))
    seen.append(os.statvfs(root).f_namemax)

    # Make every timestamp comparable with the reference run.
    run("find", root, "-mindepth", "1", "-exec", "touch", "-h", "-d", f"@{FIXED_TIME}", "{}", "+")
    return seen


def snapshot(root: Path) -> dict[str, object]:
    """Describe the tree below *root* with real tools (directory sizes and atimes left out)."""
    find = run("find", ".", "-mindepth", "1", "-printf", r"%p %y %m %n %U %G %l\n", cwd=root)
    ls_lines = []
    for line in run("ls", "-lnR", "--time-style=+%s", ".", cwd=root).splitlines():
        fields = line.split()
        if line.startswith("d") and len(fields) > 5:
            fields[4] = "DIR"  # directory sizes are the filesystem's business
        if not line.startswith("total"):
            ls_lines.append(" ".join(fields))
    files = sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.is_symlink()
    )
    stat_out = run("stat", "-c", "%n %F %a %h %u %g %s %Y", *files, cwd=root) if files else ""
    tar_listing = subprocess.run(
        f"tar -cf - --sort=name -C {root} . | tar -tvf -",
        shell=True, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    tar_listing = "\n".join(
        line for line in tar_listing.splitlines() if not line.startswith("d")
    )  # directory entries carry directory sizes in some tars: compare files only
    contents = {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in files}
    xattrs = {
        name: sorted((key, os.getxattr(root / name, key)) for key in os.listxattr(root / name))
        for name in files
    }
    return {
        "find": sorted(find.splitlines()),
        "ls": ls_lines,
        "stat": stat_out,
        "tar": tar_listing,
        "contents": contents,
        "xattrs": xattrs,
    }


def to_json(value: object) -> str:
    """`value` as JSON; bytes (xattr values) as their repr, so that runs compare."""
    return json.dumps(value, default=repr)


def main(argv: list[str]) -> None:
    """``fs_workload.py exercise ROOT SOURCE TARBALL`` or ``fs_workload.py snapshot ROOT``:
    the same, printed as JSON (for a run inside a vufuse session)."""
    if argv[:1] == ["exercise"] and len(argv) == 4:
        result: object = exercise(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    elif argv[:1] == ["snapshot"] and len(argv) == 2:
        result = snapshot(Path(argv[1]))
    else:
        raise SystemExit("usage: fs_workload.py exercise ROOT SOURCE TARBALL | snapshot ROOT")
    print(to_json(result))


if __name__ == "__main__":
    main(sys.argv[1:])
