"""FuseProvider under the hypervisor's own path resolver (no tracing): the interface fits."""

from __future__ import annotations

import errno

import pytest
from fusehelp import mounted

from hypervisor.mounts import MountTable
from hypervisor.paths import PathResolver, VirtualLocation
from vufuse import protocol as p


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (b"/vmnt/hello.txt", 14),
        (b"/vmnt/dir/sub/deep", 4),
        (b"/vmnt/dir/sub/../a", 5),
        (b"/vmnt/link", 14),
        (b"/vmnt/missing", errno.ENOENT),
        (b"/vmnt/hello.txt/x", errno.ENOTDIR),
    ],
)
async def test_resolve_through_fuse(path: bytes, expected: int) -> None:
    async with mounted() as (fs, daemon):
        mounts = MountTable()
        mounts.add(b"/vmnt", fs)
        resolver = PathResolver(mounts)
        try:
            location = (await resolver.resolve(path, follow=True)).location
        except OSError as exc:
            assert exc.errno == expected
            return
        assert isinstance(location, VirtualLocation)
        assert location.attrs.size == expected
        # The kernel never looks up "..": the resolver keeps its own parents.
        assert all(request.name != b".." for request in daemon.of(p.Opcode.LOOKUP))
