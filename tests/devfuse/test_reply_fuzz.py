"""A fuzzer over the reply stream: a seeded run and a hypothesis run drive lookups, getattrs,
reads, readdirs and readlinks through FuseProvider while the fake daemon mangles replies --
wrong uniques, cut or padded payloads, lying lengths, errors out of range, impossible modes
and sizes, '/' and NUL in names, nodeid 0, a nodeid reused with another type.

Invariants: every call returns or raises OSError with an errno the kernel could give (never
another exception, never a hang), the connection survives, and with the mangling switched off
the mount still answers.  (The daemon's lookup counts are not checked here: a mangled reply
names nodeids the daemon never counted, and the kernel would FORGET those too.)  Time is
trio's MockClock, so the 1 s grace of a lying length costs nothing.
"""

from __future__ import annotations

import errno
import random
import stat as stat_module
import struct
from collections import Counter
from typing import Any

import trio
import trio.testing
from fakedaemon import FakeDaemon
from fusehelp import mounted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vufuse import protocol as p

O = p.Opcode  # noqa: E741
HEADER = struct.Struct("<IiQ")
OPCODES = [O.LOOKUP, O.GETATTR, O.OPEN, O.READ, O.OPENDIR, O.READDIR, O.READDIRPLUS,
           O.READLINK, O.STATFS]  # fmt: skip
MUTATIONS = ["truncate", "pad", "lie_long", "lie_short", "error_range", "error_positive",
             "flip", "wrong_unique", "bad_mode", "huge_size", "zero_nodeid", "reuse_nodeid",
             "slash_name", "nul_name", "none"]  # fmt: skip
#: Offsets in entry_out / attr_out of the fields we make impossible.
ENTRY_NODEID, ENTRY_ATTR, ATTR_OUT_ATTR = 0, 40, 16
ATTR_SIZE, ATTR_MODE = 8, 60


def mangle(message: bytes, opcode: int, mutation: str, rng: random.Random) -> list[bytes]:
    """What the daemon sends instead of `message` (several messages for wrong_unique)."""
    length, error, unique = HEADER.unpack_from(message)
    body = bytearray(message[HEADER.size :])
    attr = ENTRY_ATTR if opcode == O.LOOKUP else ATTR_OUT_ATTR
    if mutation == "truncate" and body:
        body = body[: rng.randrange(len(body))]
    elif mutation == "pad":
        body += rng.randbytes(rng.randrange(1, 64))
    elif mutation == "lie_long":
        return [HEADER.pack(length + rng.randrange(1, 4096), error, unique) + body]
    elif mutation == "lie_short":
        return [HEADER.pack(max(HEADER.size, length - rng.randrange(1, 64)), error, unique) + body]
    elif mutation == "error_range":
        return [HEADER.pack(HEADER.size, rng.choice([-512, -600, -(2**31)]), unique)]
    elif mutation == "error_positive":
        return [HEADER.pack(HEADER.size, rng.randrange(1, 2**31), unique)]
    elif mutation == "flip" and body:
        index = rng.randrange(len(body))
        body[index] ^= 1 << rng.randrange(8)
    elif mutation == "wrong_unique":
        stray = HEADER.pack(len(message), error, unique + 2 * rng.randrange(1, 50)) + body
        return [stray, message]
    elif mutation in ("bad_mode", "huge_size") and opcode in (O.LOOKUP, O.GETATTR):
        if len(body) >= attr + ATTR_MODE + 4:
            if mutation == "bad_mode":
                struct.pack_into("<I", body, attr + ATTR_MODE, 0o170000 | rng.randrange(0o7777))
            else:
                struct.pack_into("<Q", body, attr + ATTR_SIZE, 2**63 + rng.randrange(2**20))
    elif mutation in ("zero_nodeid", "reuse_nodeid") and opcode == O.LOOKUP and len(body) >= 8:
        struct.pack_into("<Q", body, ENTRY_NODEID, 0 if mutation == "zero_nodeid" else 100)
    elif mutation in ("slash_name", "nul_name") and opcode in (O.READDIR, O.READDIRPLUS):
        lead = 88 + 40 if opcode == O.READDIRPLUS else 0  # entry_out + start of the name
        name_at = lead + 24
        if len(body) > name_at:
            body[name_at] = ord("/") if mutation == "slash_name" else 0
    return [HEADER.pack(HEADER.size + len(body), error, unique) + bytes(body)]


class Mangler:
    """Installs a mangling `corrupt` hook for every opcode; counts what it did."""

    def __init__(self, daemon: FakeDaemon, seed: int) -> None:
        self.daemon = daemon
        self.rng = random.Random(seed)
        self.tried: Counter[str] = Counter()
        self.plan: list[str] = []
        original = daemon._send

        async def send(message: bytes) -> None:
            for part in self.pending.pop(message, [message]):
                await original(part)

        self.pending: dict[bytes, list[bytes]] = {}
        daemon._send = send  # type: ignore[method-assign]
        daemon._forget = lambda request: None  # type: ignore[method-assign]
        for opcode in OPCODES:
            daemon.corrupt[opcode] = self._hook(opcode)

    def _hook(self, opcode: int) -> Any:
        def corrupt(message: bytes) -> bytes:
            mutation = self.plan.pop() if self.plan else self.rng.choice(MUTATIONS)
            self.tried[mutation] += 1
            parts = mangle(message, opcode, mutation, self.rng)
            self.pending[parts[0]] = parts
            return parts[0]

        return corrupt

    def off(self) -> None:
        for opcode in OPCODES:
            self.daemon.corrupt.pop(opcode, None)


ALLOWED = {errno.EIO, errno.ENOENT, errno.ESTALE, errno.ENOTDIR, errno.EISDIR, errno.EINVAL,
           errno.ELOOP}  # fmt: skip


async def operate(fs: Any, rng: random.Random, outcomes: Counter[str]) -> None:
    """One random operation; any OSError must be one the kernel could give."""
    name = rng.choice([b"hello.txt", b"big.bin", b"dir", b"link", b"empty", b"missing"])
    kind = rng.choice(["lookup", "getattr", "read", "readdir", "readlink", "statfs"])
    try:
        with trio.fail_after(60):  # mock time: only a real hang reaches it
            if kind == "statfs":
                await fs.statfs(1)
            elif kind == "readdir":
                handle = await fs.open(1, 0)
                try:
                    await handle.readdir(0)
                finally:
                    await handle.release()
            else:
                attrs = await fs.lookup(1, name)
                if kind == "getattr":
                    await fs.getattr(attrs.handle)
                elif kind == "readlink":
                    await fs.readlink(attrs.handle)
                elif kind == "read" and stat_module.S_ISREG(attrs.mode):
                    handle = await fs.open(attrs.handle, 0)
                    try:
                        await handle.read(rng.randrange(300_000), rng.randrange(1, 200_000))
                    finally:
                        await handle.release()
        outcomes["ok"] += 1
    except OSError as exc:
        assert exc.errno in ALLOWED, (kind, name, exc)
        outcomes[errno.errorcode[exc.errno or 0]] += 1


async def fuzz(
    seed: int, operations: int, plan: list[str] | None = None
) -> tuple[Counter[str], Counter[str]]:
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    async with mounted(attr_timeout=0, entry_timeout=0) as (fs, daemon):
        mangler = Mangler(daemon, seed)
        if plan is not None:
            mangler.plan = list(plan)
        for _ in range(operations):
            await operate(fs, rng, outcomes)
            assert fs.connection.connected
        mangler.off()
        await fs.forget_unused()
        assert (await fs.getattr(1)).is_dir  # the mount still answers
        await fs.statfs(1)
        assert fs.connection.connected
    return mangler.tried, outcomes


async def test_seeded_reply_stream_fuzz(autojump_clock: trio.testing.MockClock) -> None:
    tried, outcomes = await fuzz(seed=20261128, operations=1500)
    print(f"reply fuzz: {sum(tried.values())} mangled replies {dict(tried)}; "
          f"operations {dict(outcomes)}")  # fmt: skip
    assert set(tried) == set(MUTATIONS)  # every kind of mangling was tried
    assert outcomes["ok"] and outcomes["EIO"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=12), st.integers(0, 2**32))
async def test_hypothesis_reply_mutations(
    autojump_clock: trio.testing.MockClock, plan: list[str], seed: int
) -> None:
    await fuzz(seed=seed, operations=len(plan), plan=plan)
