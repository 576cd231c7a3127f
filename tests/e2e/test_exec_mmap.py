"""Programs run from a mount and files mapped from it (issue 6): exec of ELF files and
scripts (`#!`, nested interpreters, interpreters reached through the mount), fexecve of a
virtual fd, ld.so loading a library from the mount (LD_LIBRARY_PATH and $ORIGIN), a C project
with a shared library built with `make -j2`, mmap private, shared read and shared write.

Every workload runs on a real directory and on the mount in one session: outputs and trees
must be the same; the daemon's backing directory must hold what was written through a map.
"""

from __future__ import annotations

import pytest
from e2ehelp import Sessions, libfuse_example

pytestmark = pytest.mark.e2e

WORKLOAD = r"""
work() (
    cd "$1" || exit 1
    printf '#!/bin/sh\necho "script $0 $*"\n' > s.sh; chmod +x s.sh
    ./s.sh a b; echo "rc=$?"
    printf '#!/bin/sh -e\necho "script2 $*"\n' > s2.sh; chmod +x s2.sh; "$PWD/s2.sh" x
    printf '#!./s.sh\n' > nested; chmod +x nested; ./nested q
    cp /bin/echo ./myecho; ./myecho hello from elf; echo "rc=$?"
    ln -s /bin/true tru; ./tru; echo "true rc=$?"
    printf 'x' > plain; chmod 644 plain; ./plain 2>/dev/null; echo "noexec rc=$?"
    python3 - <<'PY'
import os
fd = os.open("myecho", os.O_RDONLY)
pid = os.fork()
if pid == 0:
    os.execve(fd, ["myecho", "fexecve", "works"], {})
print("fexecve status", os.waitpid(pid, 0)[1])
try:
    os.execv("./plain", ["plain"])
except OSError as e:
    print("exec plain", e.errno)
PY
    cp -r "$2" proj && cd proj || exit 1
    make -j2 >/dev/null 2>&1; echo "make rc=$?"
    ./prog; echo "origin rc=$?"
    mkdir lib && mv libtw.so lib/ && LD_LIBRARY_PATH="$PWD/lib" ./prog; echo "ld_library_path rc=$?"
    make clean >/dev/null 2>&1; rm -f *.o prog
    cd ..
    python3 - <<'PY'
import mmap
with open("s.sh", "rb") as f:
    print("private", mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)[:9])
with open("s.sh", "rb") as f:
    m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    m[0:2] = b"XX"
    print("cow", m[:4])
print("file unchanged", open("s.sh", "rb").read(4))
with open("shared", "wb") as f:
    f.write(b"0123456789" * 1000)
with open("shared", "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    m[0:3] = b"ABC"
    m[9000:9003] = b"XYZ"
    m.flush()
    with open("shared", "rb") as g:
        shared_read = mmap.mmap(g.fileno(), 0, prot=mmap.PROT_READ)
        print("seen while mapped", open("shared", "rb").read(4), shared_read[9000:9003])
    m.close()
print("after", open("shared", "rb").read(4))
PY
)
mkdir -p ref src mnt
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
work "$PWD/ref" "$PWD/project" > ref.out 2>&1; echo "ref rc=$?"
work "$PWD/mnt" "$PWD/project" > mnt.out 2>&1; echo "mnt rc=$?"
diff ref.out mnt.out && echo "same output"
diff -r ref mnt && echo "same tree"
cmp ref/shared src/shared && echo "daemon has the mapped writes"
cat mnt.out
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""


PROJECT = {
    "lib.c": "int twice(int x) { return 2 * x; }\n",
    "main.c": '#include <stdio.h>\nint twice(int);\n'
              'int main(void) { printf("twice(21)=%d\\n", twice(21)); return 0; }\n',
    "Makefile": "all: prog\n"
                "libtw.so: lib.o\n\tgcc -shared -o $@ $^\n"
                "lib.o: lib.c\n\tgcc -fPIC -c -o $@ $<\n"
                "main.o: main.c\n\tgcc -c -o $@ $<\n"
                "prog: main.o libtw.so\n\tgcc -o $@ main.o -L. -ltw -Wl,-rpath,'$$ORIGIN'\n",
}


def test_exec_and_mmap_from_a_mount(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    project = sessions.root / "project"
    project.mkdir()
    for name, text in PROJECT.items():
        (project / name).write_text(text)
    run = sessions.run(WORKLOAD, timeout=180)
    assert run.status == 0, run.output
    for line in ("ref rc=0", "mnt rc=0", "same output", "same tree",
                 "daemon has the mapped writes", "script ./s.sh a b",
                 "script ./s.sh ./nested q", "hello from elf",
                 "true rc=0", "noexec rc=126", "fexecve works", "exec plain 13",
                 "make rc=0", "twice(21)=42", "origin rc=0", "ld_library_path rc=0",
                 "cow b'XX/b'", "file unchanged b'#!/b'", "seen while mapped b'ABC3' b'XYZ'",
                 "unmount rc=0", "daemon rc=0"):
        assert line in run.lines(), run.output


GROWN_BY_ANOTHER = r"""
mkdir mnt
"$PY" "$EXAMPLES/memfs.py" "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
"$PY" - "$PWD/mnt/shm" <<'PY'
import mmap, os, sys
path = sys.argv[1]
a = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(a, b"\0", 4095)
first = mmap.mmap(a, 4096)                 # A maps one page: the file's stand-in is made
first[0:5] = b"hello"
reader, writer = os.pipe()
child = os.fork()
if child == 0:                             # B: its own open, grows the file by a write...
    b = os.open(path, os.O_RDWR)
    os.pwrite(b, b"\0", 3 * 4096 - 1)
    grown = mmap.mmap(b, 3 * 4096)         # ...then maps all of it, as sqlite's -shm does
    grown[2 * 4096 : 2 * 4096 + 5] = b"third"
    os.write(writer, grown[0:5] + b"\n")
    os._exit(0)
os.close(writer)
_, status = os.waitpid(child, 0)
print("child", os.waitstatus_to_exitcode(status))
print(os.read(reader, 100).decode().strip(), bytes(first[0:5]).decode())
PY
echo "rc=$?"
fusermount3 -u "$PWD/mnt"; wait $daemon
"""


def test_mapping_a_file_another_process_grew(sessions: Sessions) -> None:
    """Two processes map one file (sqlite's -shm): the second grew it through its own fd after
    the first mapped it; its mapping must reach the new pages (the kernel's page cache has
    them) instead of dying of SIGBUS on the first one's shorter stand-in."""
    run = sessions.run(GROWN_BY_ANOTHER)
    assert run.output.splitlines()[:3] == ["child 0", "hello hello", "rc=0"], run.output
