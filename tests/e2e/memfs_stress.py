"""A 16-process stress of a mount whose end state is known exactly in advance.

Each worker runs a plan drawn from its own seeded random generator: create, write, append,
truncate (by path, by descriptor, O_TRUNC also read-only), rename, unlink, mkdir, rename and
remove its own directories -- all in four directories every worker shares, so names come and
go in the same directories at once -- and writes its stripe of one shared file, whose stripes
straddle pages (concurrent writers of one page). Names carry the worker's number, so no two
workers ever touch the same name and the final tree does not depend on the interleaving: the
test computes it from the plans alone (:func:`expected`), never from what the workers saw.

Run as a program inside a session: ``memfs_stress.py MOUNT`` forks the workers, waits, walks
the mount and prints one line per entry (:func:`describe`); a worker that finds a read-back
differing from its plan prints ``MISMATCH`` and fails.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from dataclasses import dataclass, field

WORKERS = 16
OPERATIONS = 120
SHARED_DIRS = ("a", "b", "a/c", "b/d")
SHARED_FILE = "shared.bin"
STRIPE = 1000
"""Bytes of the shared file each worker owns: not a multiple of the page size on purpose."""


@dataclass
class Worker:
    """One worker's namespace as its plan leaves it: directories and file contents by path."""

    number: int
    dirs: list[str] = field(default_factory=list)
    files: dict[str, bytearray] = field(default_factory=dict)
    stripe: bytes = bytes(STRIPE)
    counter: int = 0

    def name(self) -> str:
        """A fresh name of this worker's."""
        self.counter += 1
        return f"w{self.number:02d}_{self.counter}"

    def places(self) -> list[str]:
        """Directories a file of this worker's may live in."""
        return [*SHARED_DIRS, *self.dirs]


def _data(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def plan(number: int) -> list[tuple]:
    """The operations of worker `number`, each a tuple the worker executes as it says."""
    rng = random.Random(4242 + number)
    state = Worker(number)
    steps: list[tuple] = []
    for _ in range(OPERATIONS):
        _step(rng, state, steps)
    return steps


def _step(rng: random.Random, state: Worker, steps: list[tuple]) -> None:
    kinds = ["create", "create", "stripe", "mkdir"]
    if state.files:
        kinds += ["write", "write", "append", "truncate", "ftruncate", "otrunc", "otrunc_ro",
                  "rename", "rename", "unlink", "verify"]  # fmt: skip
    if state.dirs:
        kinds += ["rename_dir", "rmdir"]
    kind = rng.choice(kinds)
    files = sorted(state.files)
    if kind == "create":
        path = f"{rng.choice(state.places())}/{state.name()}"
        data = _data(rng, rng.randrange(0, 20000))
        state.files[path] = bytearray(data)
        steps.append(("create", path, data))
    elif kind == "stripe":
        state.stripe = _data(rng, STRIPE)
        steps.append(("pwrite", SHARED_FILE, state.number * STRIPE, state.stripe))
    elif kind == "mkdir":
        path = f"{rng.choice(SHARED_DIRS)}/{state.name()}d"
        state.dirs.append(path)
        steps.append(("mkdir", path))
    elif kind in ("write", "append"):
        path = rng.choice(files)
        content = state.files[path]
        data = _data(rng, rng.randrange(1, 9000))
        offset = len(content) if kind == "append" else rng.randrange(0, len(content) + 5000)
        content.extend(bytes(max(0, offset - len(content))))
        content[offset : offset + len(data)] = data
        steps.append((kind if kind == "append" else "pwrite", path, offset, data))
    elif kind in ("truncate", "ftruncate"):
        path = rng.choice(files)
        content = state.files[path]
        size = rng.randrange(0, len(content) + 3000)
        del content[size:]
        content.extend(bytes(size - len(content)))
        steps.append((kind, path, size))
    elif kind == "otrunc":
        path = rng.choice(files)
        data = _data(rng, rng.randrange(0, 3000))
        state.files[path] = bytearray(data)
        steps.append(("otrunc", path, data))
    elif kind == "otrunc_ro":  # open(O_RDONLY | O_TRUNC) truncates too, on Linux
        path = rng.choice(files)
        state.files[path] = bytearray()
        steps.append(("otrunc_ro", path))
    elif kind == "rename":
        old = rng.choice(files)
        if rng.random() < 0.3 and len(files) > 1:
            new = rng.choice([f for f in files if f != old])  # replace another own file
        else:
            new = f"{rng.choice(state.places())}/{state.name()}"
        state.files[new] = state.files.pop(old)
        steps.append(("rename", old, new))
    elif kind == "unlink":
        path = rng.choice(files)
        del state.files[path]
        steps.append(("unlink", path))
    elif kind == "verify":
        path = rng.choice(files)
        steps.append(("verify", path, bytes(state.files[path])))
    elif kind == "rename_dir":
        old = rng.choice(state.dirs)
        # Into a shared directory, under a new name: the files inside move with it.
        new = f"{rng.choice(SHARED_DIRS)}/{state.name()}d"
        state.dirs[state.dirs.index(old)] = new
        for path in [p for p in state.files if p.startswith(old + "/")]:
            state.files[new + path[len(old) :]] = state.files.pop(path)
        steps.append(("rename", old, new))
    elif kind == "rmdir":
        path = rng.choice(state.dirs)
        inside = [p for p in state.files if p.startswith(path + "/")]
        for victim in inside:
            del state.files[victim]
            steps.append(("unlink", victim))
        state.dirs.remove(path)
        steps.append(("rmdir", path))


def final_state(number: int) -> Worker:
    """Worker `number`'s namespace after its whole plan."""
    rng = random.Random(4242 + number)
    state = Worker(number)
    for _ in range(OPERATIONS):
        _step(rng, state, [])
    return state


def expected() -> list[str]:
    """What :func:`describe` must print for the mount after every worker finished."""
    entries = {directory: None for directory in SHARED_DIRS}
    shared = bytearray(WORKERS * STRIPE)
    for number in range(WORKERS):
        state = final_state(number)
        entries.update({directory: None for directory in state.dirs})
        entries.update({path: bytes(data) for path, data in state.files.items()})
        shared[number * STRIPE : (number + 1) * STRIPE] = state.stripe
    entries[SHARED_FILE] = bytes(shared)
    return [_line(path, data) for path, data in sorted(entries.items())]


def _line(path: str, data: bytes | None) -> str:
    if data is None:
        return f"d {path}"
    return f"f {path} {len(data)} {hashlib.sha256(data).hexdigest()[:16]}"


def describe(root: str) -> list[str]:
    """Every directory and file under `root` with size and content hash, sorted by path."""
    entries: dict[str, bytes | None] = {}
    for directory, dirs, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        for name in dirs:
            entries[os.path.normpath(os.path.join(relative, name))] = None
        for name in files:
            with open(os.path.join(directory, name), "rb") as handle:
                entries[os.path.normpath(os.path.join(relative, name))] = handle.read()
    return [_line(path, data) for path, data in sorted(entries.items())]


# --- the worker side ---------------------------------------------------------------------------
def _run(root: str, step: tuple) -> str | None:
    """Execute one step under `root`; a complaint, or None."""
    kind, path = step[0], os.path.join(root, step[1])
    if kind == "create":
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        _write_all(fd, step[2], 0)
        os.close(fd)
    elif kind == "pwrite":
        fd = os.open(path, os.O_WRONLY)
        _write_all(fd, step[3], step[2])
        os.close(fd)
    elif kind == "append":
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.write(fd, step[3])
        if os.lseek(fd, 0, os.SEEK_CUR) != step[2] + len(step[3]):
            return f"append to {step[1]} ended at {os.lseek(fd, 0, os.SEEK_CUR)}"
        os.close(fd)
    elif kind == "truncate":
        os.truncate(path, step[2])
    elif kind == "ftruncate":
        fd = os.open(path, os.O_RDWR)
        os.ftruncate(fd, step[2])
        os.close(fd)
    elif kind == "otrunc":
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        _write_all(fd, step[2], 0)
        os.close(fd)
    elif kind == "otrunc_ro":
        os.close(os.open(path, os.O_RDONLY | os.O_TRUNC))
    elif kind == "rename":
        os.rename(path, os.path.join(root, step[2]))
    elif kind == "unlink":
        os.unlink(path)
    elif kind == "mkdir":
        os.mkdir(path)
    elif kind == "rmdir":
        os.rmdir(path)
    elif kind == "verify":
        with open(path, "rb") as handle:
            if handle.read() != step[2]:
                return f"{step[1]} reads back wrong"
    return None


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def work(root: str, number: int) -> int:
    """Worker `number`: its plan, then every one of its files read back; exit status."""
    complaints = []
    for step in plan(number):
        try:
            complaint = _run(root, step)
        except OSError as failure:
            complaint = f"{step[0]} {step[1]}: {failure}"
        if complaint:
            complaints.append(complaint)
    state = final_state(number)
    for path, data in sorted(state.files.items()):
        with open(os.path.join(root, path), "rb") as handle:
            if handle.read() != data:
                complaints.append(f"{path} reads back wrong at the end")
    for complaint in complaints:
        print(f"MISMATCH worker {number}: {complaint}", flush=True)
    return 1 if complaints else 0


def main(root: str) -> int:
    """Set up the shared part, fork the workers, wait, print the tree."""
    for directory in SHARED_DIRS:
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    with open(os.path.join(root, SHARED_FILE), "wb") as handle:
        handle.write(bytes(WORKERS * STRIPE))
    children = []
    for number in range(WORKERS):
        child = os.fork()
        if child == 0:
            os._exit(work(root, number))
        children.append(child)
    failed = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        failed += status != 0
    print(f"workers failed: {failed}")
    for line in describe(root):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
