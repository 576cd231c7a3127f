"""The catalogue of FUSE programs under test, and how each is prepared and mounted.

Every command line keeps the daemon in the foreground (``-f`` or its equivalent): the session
script backgrounds it itself, so the harness always knows the daemon's pid and a daemon never
escapes a backend by forking away. Storage (images, archives, upper dirs) is built in
``prepare``, before the session, by ordinary tools (mksquashfs, mkfs.ext4 -d, zip, tar).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .fixtures import chown_tree, run_checked
from .model import Access, Context, Program, Reference

COMPAT_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = COMPAT_DIR.parent
GOCRYPTFS_PASSWORD = "compat-tests"


def _libfuse(context: Context, name: str) -> str:
    return str(context.externals / "libfuse" / name)


def _compat_python(context: Context) -> str:
    """The venv with fusepy and mfusepy (made by compat-tests/setup.sh)."""
    return str(context.externals / "compat-venv" / "bin" / "python")


def _ws(context: Context) -> tuple[str, str, str]:
    workspace = context.workspace
    return str(workspace.src), str(workspace.mnt), str(workspace.store)


def _prepare_squashfs(context: Context) -> None:
    src, _, store = _ws(context)
    run_checked(
        ["mksquashfs", src, f"{store}/image.squashfs", "-quiet", "-noappend", "-no-progress"]
    )


def _prepare_ext4(context: Context) -> None:
    src, _, store = _ws(context)
    image = f"{store}/image.ext4"
    # mkfs -d copies owners from the tree: give it the session's user, as the other programs'
    # trees are, or the 0600 file would be unreadable to the ordinary user for that reason only.
    chown_tree(context.workspace.src, context.uid, context.gid)
    owner = f"root_owner={context.uid}:{context.gid}"
    run_checked(["mkfs.ext4", "-q", "-F", "-E", owner, "-d", src, image, "64M"])
    # mkfs adds a root-owned 0700 lost+found that the tree doesn't have (and that an ordinary
    # user can't list); the image should hold exactly the fixture tree.
    run_checked(["debugfs", "-w", "-R", "rmdir lost+found", image])


def _prepare_zip(context: Context) -> None:
    src, _, store = _ws(context)
    # -y stores symlinks as links rather than the files they point to
    run_checked(["zip", "-q", "-r", "-y", f"{store}/archive.zip", "."], cwd=Path(src))


def _prepare_tar(context: Context) -> None:
    src, _, store = _ws(context)
    run_checked(["tar", "-cf", f"{store}/archive.tar", "-C", src, "."])


def _prepare_union(context: Context) -> None:
    store = context.workspace.store
    (store / "upper").mkdir()
    (store / "work").mkdir()


def _prepare_gocryptfs(context: Context) -> None:
    store = context.workspace.store
    cipher = store / "cipher"
    cipher.mkdir()
    run_checked(
        [
            "gocryptfs",
            "-init",
            "-q",
            "-scryptn",
            "10",
            "-extpass",
            f"echo {GOCRYPTFS_PASSWORD}",
            str(cipher),
        ]
    )


def _prepare_rclone(context: Context) -> None:
    (context.workspace.store / "rclone-cache").mkdir()


def _example(name: str, with_source: bool, seed: bool = False, **kwargs: object) -> Program:
    """One of our pyfuse3 API's examples (examples/fs/NAME.py), run with python3."""

    def argv(context: Context) -> list[str]:
        src, mnt, _ = _ws(context)
        script = str(context.repo / "examples" / "fs" / f"{name}.py")
        return ["python3", script, *([src] if with_source else []), mnt]

    return Program(
        name=f"pyfuse3-api:{name}",
        description=f"our pure-Python pyfuse3 API, examples/fs/{name}.py",
        mount_argv=argv,
        requires=(f"@examples/fs/{name}.py",),
        seed=seed,
        **kwargs,  # type: ignore[arg-type]
    )


def _real_pyfuse3(context: Context) -> Path:
    """The real pyfuse3 (PyPI, Cython over libfuse3) with its sdist's examples beside it."""
    return context.externals / "real-pyfuse3"


def _pyfuse3_example(name: str, ours: bool, with_source: bool, **kwargs: object) -> Program:
    """One of pyfuse3's own examples (from its sdist), on the real pyfuse3 or on ours.

    Ours is imported as ``pyfuse3`` through vufuse/pyfuse3/_alias on PYTHONPATH, by the
    checkout's .venv Python (it has trio, which the examples import).
    """

    def argv(context: Context) -> list[str]:
        src, mnt, _ = _ws(context)
        script = str(_real_pyfuse3(context) / "examples" / f"{name}.py")
        python = (
            context.repo / ".venv" / "bin" / "python"
            if ours
            else _real_pyfuse3(context) / "venv" / "bin" / "python"
        )
        return [str(python), script, *([src] if with_source else []), mnt]

    implementation = "our pyfuse3 (vufuse.pyfuse3)" if ours else "the real pyfuse3 3.5.0"
    env = {"PYTHONPATH": str(REPO_DIR / "vufuse" / "pyfuse3" / "_alias")} if ours else {}
    return Program(
        name=f"{'our' if ours else 'real'}-pyfuse3:{name}",
        description=f"pyfuse3's examples/{name}.py (from its sdist) on {implementation}",
        mount_argv=argv,
        requires=(f"@real-pyfuse3/examples/{name}.py", "@real-pyfuse3/venv/bin/python"),
        env=env,
        **kwargs,  # type: ignore[arg-type]
    )


def _pyfuse3_examples(ours: bool) -> tuple[Program, ...]:
    hello = {"message": (b"hello world\n", 0o644)}
    return (
        _pyfuse3_example(
            "hello",
            ours,
            with_source=False,
            access=Access.RO,
            reference=Reference.DECLARED,
            declared_files=hello,
        ),
        _pyfuse3_example(
            "hello_asyncio",
            ours,
            with_source=False,
            access=Access.RO,
            reference=Reference.DECLARED,
            declared_files=hello,
        ),
        _pyfuse3_example("tmpfs", ours, with_source=False, seed=True, access=Access.RW),
        _pyfuse3_example(
            "passthroughfs", ours, with_source=True, access=Access.RW, passthrough=True
        ),
    )


HELLO_LIBFUSE = {"hello": (b"Hello World!\n", 0o444)}

PROGRAMS: tuple[Program, ...] = (
    Program(
        name="hello",
        description="libfuse example, high-level API (one read-only file)",
        access=Access.RO,
        mount_argv=lambda c: [_libfuse(c, "hello"), "-f", str(c.workspace.mnt)],
        requires=("@libfuse/hello",),
        reference=Reference.DECLARED,
        declared_files=HELLO_LIBFUSE,
    ),
    Program(
        name="hello_ll",
        description="libfuse example, low-level API (one read-only file)",
        access=Access.RO,
        mount_argv=lambda c: [_libfuse(c, "hello_ll"), "-f", str(c.workspace.mnt)],
        requires=("@libfuse/hello_ll",),
        reference=Reference.DECLARED,
        declared_files=HELLO_LIBFUSE,
        quick=True,
    ),
    Program(
        name="passthrough",
        description="libfuse example: mirrors / (high-level API)",
        access=Access.RW,
        mount_argv=lambda c: [_libfuse(c, "passthrough"), "-f", str(c.workspace.mnt)],
        requires=("@libfuse/passthrough",),
        root_in_mount=lambda c: str(c.workspace.src),
        passthrough=True,
    ),
    Program(
        name="passthrough_fh",
        description="libfuse example: mirrors / keeping file handles (high-level API)",
        access=Access.RW,
        mount_argv=lambda c: [_libfuse(c, "passthrough_fh"), "-f", str(c.workspace.mnt)],
        requires=("@libfuse/passthrough_fh",),
        root_in_mount=lambda c: str(c.workspace.src),
        passthrough=True,
    ),
    Program(
        name="passthrough_ll",
        description="libfuse example: mirrors a directory (low-level API)",
        access=Access.RW,
        mount_argv=lambda c: [
            _libfuse(c, "passthrough_ll"),
            "-f",
            "-o",
            f"source={c.workspace.src}",
            str(c.workspace.mnt),
        ],
        requires=("@libfuse/passthrough_ll",),
        passthrough=True,
        quick=True,
    ),
    Program(
        name="passthrough_hp",
        description="libfuse example: mirrors a directory, multi-threaded, splice, caching (C++);"
        " no test_syscalls: it changes the source behind the cache, which libfuse's own tests"
        " only do with --nocache",
        access=Access.RW,
        mount_argv=lambda c: [
            _libfuse(c, "passthrough_hp"),
            "--foreground",
            str(c.workspace.src),
            str(c.workspace.mnt),
        ],
        requires=("@libfuse/passthrough_hp",),
    ),
    Program(
        name="passthrough_hp-nocache",
        description="passthrough_hp --nocache, as libfuse's own tests run test_syscalls on it",
        access=Access.RW,
        mount_argv=lambda c: [
            _libfuse(c, "passthrough_hp"),
            "--foreground",
            "--nocache",
            str(c.workspace.src),
            str(c.workspace.mnt),
        ],
        requires=("@libfuse/passthrough_hp",),
        passthrough=True,
    ),
    Program(
        name="squashfuse",
        description="squashfs image made by mksquashfs from the fixture tree",
        access=Access.RO,
        mount_argv=lambda c: [
            "squashfuse",
            "-f",
            f"{c.workspace.store}/image.squashfs",
            str(c.workspace.mnt),
        ],
        requires=("squashfuse", "mksquashfs"),
        prepare=_prepare_squashfs,
        quick=True,
    ),
    Program(
        name="fuse2fs",
        description="ext4 image made by mkfs.ext4 -d from the fixture tree, read-write",
        access=Access.RW,
        mount_argv=lambda c: [
            "fuse2fs",
            "-f",
            f"{c.workspace.store}/image.ext4",
            str(c.workspace.mnt),
        ],
        requires=("fuse2fs", "mkfs.ext4"),
        prepare=_prepare_ext4,
    ),
    Program(
        name="fuse-zip",
        description="zip archive of the fixture tree, read-write",
        access=Access.RW,
        mount_argv=lambda c: [
            "fuse-zip",
            "-f",
            f"{c.workspace.store}/archive.zip",
            str(c.workspace.mnt),
        ],
        requires=("fuse-zip", "zip"),
        prepare=_prepare_zip,
    ),
    Program(
        name="archivemount",
        description="tar archive of the fixture tree (libarchive), read-write",
        access=Access.RW,
        mount_argv=lambda c: [
            "archivemount",
            "-f",
            f"{c.workspace.store}/archive.tar",
            str(c.workspace.mnt),
        ],
        requires=("archivemount", "tar"),
        prepare=_prepare_tar,
    ),
    Program(
        name="bindfs",
        description="bind-mount of a directory",
        access=Access.RW,
        mount_argv=lambda c: ["bindfs", "-f", str(c.workspace.src), str(c.workspace.mnt)],
        requires=("bindfs",),
        passthrough=True,
    ),
    Program(
        name="unionfs-fuse",
        description="copy-on-write union: empty writable branch over the fixture tree",
        access=Access.RW,
        mount_argv=lambda c: [
            "unionfs",
            "-f",
            "-o",
            "cow",
            f"{c.workspace.store}/upper=RW:{c.workspace.src}=RO",
            str(c.workspace.mnt),
        ],
        requires=("unionfs",),
        prepare=_prepare_union,
    ),
    Program(
        name="fuse-overlayfs",
        description="overlay: empty upper dir over the fixture tree",
        access=Access.RW,
        mount_argv=lambda c: [
            "fuse-overlayfs",
            "-f",
            "-o",
            f"lowerdir={c.workspace.src},upperdir={c.workspace.store}/upper,workdir={c.workspace.store}/work",
            str(c.workspace.mnt),
        ],
        requires=("fuse-overlayfs",),
        prepare=_prepare_union,
    ),
    Program(
        name="sshfs",
        description="sshfs to an unprivileged sshd on 127.0.0.1 (generated keys)",
        access=Access.RW,
        mount_argv=lambda c: [
            "sshfs",
            "-f",
            "-F",
            f"{c.workspace.store}/ssh_config",
            f"compat-sshd:{c.workspace.src}",
            str(c.workspace.mnt),
        ],
        requires=("sshfs", "/usr/sbin/sshd", "ssh-keygen"),
        needs_sshd=True,
    ),
    Program(
        name="gocryptfs",
        description="encrypted directory (go-fuse; mounts through fusermount3 as a user)",
        access=Access.RW,
        mount_argv=lambda c: [
            "gocryptfs",
            "-fg",
            "-q",
            "-extpass",
            f"echo {GOCRYPTFS_PASSWORD}",
            f"{c.workspace.store}/cipher",
            str(c.workspace.mnt),
        ],
        requires=("gocryptfs",),
        prepare=_prepare_gocryptfs,
        seed=True,
    ),
    Program(
        name="rclone",
        description="rclone mount of a local directory (bazil fuse; execs fusermount)",
        access=Access.RW,
        mount_argv=lambda c: [
            "rclone",
            "mount",
            "--config",
            "/dev/null",
            "--vfs-cache-mode",
            "writes",
            "--cache-dir",
            f"{c.workspace.store}/rclone-cache",
            "--log-level",
            "ERROR",
            str(c.workspace.src),
            str(c.workspace.mnt),
        ],
        requires=("rclone",),
        prepare=_prepare_rclone,
    ),
    Program(
        name="fusepy-mirror",
        description="our mirror filesystem on fusepy 3.0.1 (libfuse2, ctypes)",
        access=Access.RW,
        mount_argv=lambda c: [
            _compat_python(c),
            str(COMPAT_DIR / "fusepy_fs" / "mirrorfs.py"),
            "--api",
            "fusepy",
            str(c.workspace.src),
            str(c.workspace.mnt),
        ],
        requires=("@compat-venv/bin/python",),
        passthrough=True,
    ),
    Program(
        name="mfusepy-mirror",
        description="our mirror filesystem on mfusepy (libfuse3, ctypes)",
        access=Access.RW,
        mount_argv=lambda c: [
            _compat_python(c),
            str(COMPAT_DIR / "fusepy_fs" / "mirrorfs.py"),
            "--api",
            "mfusepy",
            str(c.workspace.src),
            str(c.workspace.mnt),
        ],
        requires=("@compat-venv/bin/python",),
        passthrough=True,
        env={"FUSE_LIBRARY_NAME": "fuse3"},
    ),
    _example("hello", with_source=False, access=Access.RO, reference=Reference.SNAPSHOT),
    _example(
        "demofs",
        with_source=False,
        access=Access.RO,
        reference=Reference.SNAPSHOT,
        only_workloads=("find",),
    ),
    _example("memfs", with_source=False, seed=True, access=Access.RW),
    _example("passthroughfs", with_source=True, access=Access.RW, passthrough=True),
    *_pyfuse3_examples(ours=False),
    *_pyfuse3_examples(ours=True),
)

BY_NAME = {program.name: program for program in PROGRAMS}


def missing_requirement(program: Program, repo: Path, externals: Path) -> str | None:
    """The first thing *program* needs that this machine lacks, or None.

    ``@libfuse/X`` and ``@compat-venv/...`` are under the externals dir; ``@examples/...`` in
    the checkout; absolute paths must exist; other names must be on PATH.
    """
    for need in program.requires:
        if need.startswith("@examples/"):
            path = repo / need[1:]
            hint = "not written yet"
        elif need.startswith("@"):
            path = externals / need[1:]
            hint = "run compat-tests/setup.sh"
        elif need.startswith("/"):
            path, hint = Path(need), "apt package missing; run compat-tests/setup.sh"
        else:
            found = shutil.which(need, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
            if found:
                continue
            return f"{need} not installed (run compat-tests/setup.sh)"
        if not path.exists():
            return f"{path} missing ({hint})"
    return None
