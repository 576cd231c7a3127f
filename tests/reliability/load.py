"""Load: PROCESSES x THREADS hammer one mount for DURATION seconds with a data-verifying
workload (random offsets and sizes, truncates, renames with the file open), every byte read
checked against an in-memory model; the hypervisor's RSS is sampled throughout.

Usage: python3 load.py MOUNTPOINT HYPERVISOR_PID DURATION [PROCESSES THREADS SEED]
Prints one JSON object: operations, bytes written and verified, errors, RSS figures (KiB).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time

MAX_SIZE = 256 * 1024


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Worker:
    """One thread's files and their model."""

    def __init__(self, directory: str, name: str, seed: int) -> None:
        self.random = random.Random(seed)
        self.paths = [f"{directory}/{name}-{i}" for i in range(2)]
        self.spare = f"{directory}/{name}-renamed"
        self.models = [bytearray() for _ in self.paths]
        self.fds = [os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                    for path in self.paths]  # fmt: skip
        self.counts = {"operations": 0, "written": 0, "verified": 0, "errors": 0}
        self.errors: list[str] = []

    def fail(self, what: str) -> None:
        self.counts["errors"] += 1
        if len(self.errors) < 5:
            self.errors.append(what)

    def check(self, index: int, offset: int, data: bytes) -> None:
        expected = bytes(self.models[index][offset : offset + len(data)])
        if data != expected:
            self.fail(f"{self.paths[index]}@{offset}: {len(data)} bytes differ from the model")
        else:
            self.counts["verified"] += len(data)

    def step(self) -> None:
        r = self.random
        index = r.randrange(len(self.paths))
        fd, model = self.fds[index], self.models[index]
        choice = r.random()
        if choice < 0.4:
            offset, size = r.randrange(MAX_SIZE), r.randrange(1, 64 * 1024)
            data = r.randbytes(size)
            written = os.pwrite(fd, data, offset)
            if written != size:
                self.fail(f"short write {written} of {size}")
            if len(model) < offset:
                model.extend(bytes(offset - len(model)))
            model[offset : offset + size] = data
            self.counts["written"] += size
        elif choice < 0.75:
            offset, size = r.randrange(MAX_SIZE + 4096), r.randrange(1, 96 * 1024)
            self.check(index, offset, os.pread(fd, size, offset))
        elif choice < 0.85:
            size = r.randrange(MAX_SIZE)
            os.ftruncate(fd, size)
            del model[size:]
            model.extend(bytes(size - len(model)))
        elif choice < 0.93:
            # rename away and back while open; the open fd keeps working
            os.rename(self.paths[index], self.spare)
            if os.fstat(fd).st_size != len(model):
                self.fail("size after rename")
            os.rename(self.spare, self.paths[index])
        else:
            # close, reopen by name, verify the whole file
            os.close(fd)
            self.fds[index] = fd = os.open(self.paths[index], os.O_RDWR)
            if os.stat(self.paths[index]).st_size != len(model):
                self.fail("size after reopen")
            data = b""
            while len(data) < len(model) + 1:
                chunk = os.pread(fd, 128 * 1024, len(data))
                if not chunk:
                    break
                data += chunk
            self.check(index, 0, data)
            if len(data) != len(model):
                self.fail("length after reopen")
        self.counts["operations"] += 1

    def run(self, deadline: float) -> None:
        try:
            while time.monotonic() < deadline:
                self.step()
        except OSError as exc:
            self.fail(f"{exc!r}")
        finally:
            for fd in self.fds:
                os.close(fd)


def process(directory: str, number: int, threads: int, duration: float, seed: int) -> dict:
    workers = [Worker(directory, f"p{number}t{t}", seed * 1000 + number * 10 + t)
               for t in range(threads)]  # fmt: skip
    deadline = time.monotonic() + duration
    running = [threading.Thread(target=w.run, args=(deadline,)) for w in workers]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(duration + 120)
        if thread.is_alive():
            return {"errors": 1, "messages": ["a thread did not finish: deadlock?"]}
    total: dict = {"operations": 0, "written": 0, "verified": 0, "errors": 0, "messages": []}
    for worker in workers:
        for key, value in worker.counts.items():
            total[key] += value
        total["messages"] += worker.errors
    return total


def main() -> None:
    mountpoint, hypervisor, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    processes = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 9
    samples = [rss_kib(hypervisor)]
    baseline = samples[0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            samples.append(rss_kib(hypervisor))

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    children = []
    for number in range(processes):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            result = process(mountpoint, number, threads, duration, seed)
            os.write(write_end, json.dumps(result).encode())
            os._exit(0)
        os.close(write_end)
        children.append((pid, read_end))
    total: dict = {"operations": 0, "written": 0, "verified": 0, "errors": 0, "messages": []}
    for pid, read_end in children:
        data = b""
        while chunk := os.read(read_end, 65536):
            data += chunk
        os.waitpid(pid, 0)
        result = json.loads(data or b'{"errors": 1, "messages": ["a process died"]}')
        for key in total:
            total[key] += result.get(key, 0 if key != "messages" else [])
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    total.update(
        processes=processes, threads=threads, seconds=round(elapsed, 1),
        rss_before_kib=baseline, rss_peak_kib=max(samples), rss_after_kib=rss_kib(hypervisor),
    )  # fmt: skip
    print(json.dumps(total), flush=True)


if __name__ == "__main__":
    main()
