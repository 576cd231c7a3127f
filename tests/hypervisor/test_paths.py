"""The path resolver, checked against the kernel on an identical real tree (no tracing)."""

from __future__ import annotations

import errno
import os
import stat as stat_module
from pathlib import Path

import pytest
from memprovider import MemProvider, make_real_tree, sample_tree

from hypervisor.mounts import MountTable
from hypervisor.paths import PathResolver, RealLocation, VirtualLocation

CASES = [
    "hello.txt", "dir", "dir/", "dir/a", "dir/a/", "dir/sub/deep", "dir/./sub/../a",
    "link", "link/", "dirlink", "dirlink/", "dirlink/sub/deep", "dangling", "dangling/",
    "loop", "loop/", "missing", "missing/x", "hello.txt/x", "link/x", "dir//a", "./dir",
    "up", "up/", "dir/sub/../../hello.txt", "a" * 256, "dir/" + "b" * 256 + "/x",
    "dirlink/../hello.txt",
]


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path, PathResolver, MemProvider]:
    real = tmp_path / "real"
    mnt = tmp_path / "mnt"
    real.mkdir()
    mnt.mkdir()
    make_real_tree(str(real))
    provider = MemProvider()
    sample_tree(provider)
    mounts = MountTable()
    mounts.add(os.fsencode(mnt.resolve()), provider)
    return real.resolve(), mnt.resolve(), PathResolver(mounts), provider


def kernel_outcome(path: str, follow: bool) -> object:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError as e:
        return errno.errorcode[e.errno]
    return (stat_module.S_IFMT(st.st_mode), st.st_size if not stat_module.S_ISDIR(st.st_mode)
            else 0)


async def resolver_outcome(resolver: PathResolver, path: str, follow: bool) -> object:
    try:
        location = (await resolver.resolve(os.fsencode(path), follow=follow)).location
    except OSError as e:
        return errno.errorcode[e.errno]
    assert isinstance(location, VirtualLocation), location
    attrs = location.attrs
    return (stat_module.S_IFMT(attrs.mode), 0 if attrs.is_dir else attrs.size)


@pytest.mark.parametrize("follow", [True, False])
@pytest.mark.parametrize("relative", CASES)
async def test_same_as_kernel(world, relative: str, follow: bool) -> None:
    real, mnt, resolver, _ = world
    expected = kernel_outcome(f"{real}/{relative}", follow)
    if relative.startswith("up") and expected not in ("ENOTDIR", "ENOENT"):
        # "up" leaves the tree: both sides land on the tree's parent, a real directory.
        location = (await resolver.resolve(os.fsencode(f"{mnt}/{relative}"), follow=follow))
        if isinstance(location.location, RealLocation):
            assert location.location.path == os.fsencode(mnt.parent)
            return
    assert await resolver_outcome(resolver, f"{mnt}/{relative}", follow) == expected


async def test_dotdot_leaves_mount(world) -> None:
    _, mnt, resolver, _ = world
    result = await resolver.resolve(os.fsencode(f"{mnt}/dir/../.."))
    assert result.location == RealLocation(os.fsencode(mnt.parent))
    assert result.via_virtual and not result.kernel_can_do_it


async def test_relative_to_virtual_base(world) -> None:
    _, mnt, resolver, _ = world
    base = (await resolver.resolve(os.fsencode(f"{mnt}/dir"))).location
    deep = (await resolver.resolve(b"sub/deep", base)).location
    assert isinstance(deep, VirtualLocation) and deep.path == os.fsencode(f"{mnt}/dir/sub/deep")
    up = await resolver.resolve(b"../..", base)
    assert up.location == RealLocation(os.fsencode(mnt.parent)) and up.via_virtual


async def test_real_symlink_into_mount(world, tmp_path: Path) -> None:
    _, mnt, resolver, _ = world
    os.symlink(f"{mnt}/dir", tmp_path / "into")
    result = await resolver.resolve(os.fsencode(f"{tmp_path}/into/a"))
    assert isinstance(result.location, VirtualLocation)
    assert result.location.parts == (b"dir", b"a")


async def test_virtual_symlink_to_real(world, tmp_path: Path) -> None:
    _, mnt, resolver, provider = world
    (tmp_path / "outside").write_bytes(b"x")
    provider.add_symlink("out", f"{tmp_path}/outside")
    result = await resolver.resolve(os.fsencode(f"{mnt}/out"))
    assert result.location == RealLocation(os.fsencode(f"{tmp_path}/outside"))
    assert not result.kernel_can_do_it


async def test_real_paths_untouched(world, tmp_path: Path) -> None:
    real, _, resolver, _ = world
    result = await resolver.resolve(os.fsencode(f"{real}/dirlink/a"))
    assert result.location == RealLocation(os.fsencode(f"{real}/dir/a"))
    assert result.kernel_can_do_it


async def test_limits(world) -> None:
    _, mnt, resolver, _ = world
    with pytest.raises(OSError) as info:
        await resolver.resolve(b"/" + b"a/" * 2048)
    assert info.value.errno == errno.ENAMETOOLONG
    assert len(b"/" + b"a/" * 2046 + b"ab") + 1 == 4096
    with pytest.raises(OSError) as info:
        await resolver.resolve(b"/" + b"a/" * 2046 + b"ab")  # exactly PATH_MAX: fine, ENOENT
    assert info.value.errno == errno.ENOENT
    with pytest.raises(OSError) as info:
        await resolver.resolve(b"")
    assert info.value.errno == errno.ENOENT


async def test_symlink_chain_limit(world) -> None:
    _, mnt, resolver, provider = world
    for i in range(41):
        provider.add_symlink(f"c{i}", f"c{i + 1}")
    provider.write("c41", b"end")
    with pytest.raises(OSError) as info:
        await resolver.resolve(os.fsencode(f"{mnt}/c0"))
    assert info.value.errno == errno.ELOOP
    result = await resolver.resolve(os.fsencode(f"{mnt}/c1"))  # 40 links: allowed
    assert isinstance(result.location, VirtualLocation)


async def test_handle_is_separate_from_st_ino(tmp_path: Path) -> None:
    """Lookups name objects by the provider's handle; stat's st_ino is Attributes.ino."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    provider = MemProvider(ino_offset=1000)
    sample_tree(provider)
    mounts = MountTable()
    mounts.add(os.fsencode(mnt.resolve()), provider)
    resolver = PathResolver(mounts)
    found = (await resolver.resolve(os.fsencode(mnt.resolve() / "dir/sub/deep"))).location
    assert isinstance(found, VirtualLocation)
    deep = provider.nodes[provider.nodes[provider.nodes[1].children[b"dir"]].children[b"sub"]]
    assert found.ino == deep.children[b"deep"]
    assert found.attrs.ino == found.ino + 1000
    linked = (await resolver.resolve(os.fsencode(mnt.resolve() / "link"))).location
    assert isinstance(linked, VirtualLocation) and linked.attrs.size == 13


async def test_name_limit_is_the_file_systems(world) -> None:
    """NAME_MAX is each file system's: 255 for the in-memory one, 1024 for FUSE (a 256-byte
    name reaches the daemon, as on the kernel; only over 1024 is ENAMETOOLONG)."""
    _, mnt, resolver, provider = world
    with pytest.raises(OSError) as info:
        await resolver.resolve(os.fsencode(mnt) + b"/" + b"n" * 256)
    assert info.value.errno == errno.ENAMETOOLONG
    provider.name_max = 1024
    with pytest.raises(OSError) as info:
        await resolver.resolve(os.fsencode(mnt) + b"/" + b"n" * 1024)
    assert info.value.errno == errno.ENOENT
    with pytest.raises(OSError) as info:
        await resolver.resolve(os.fsencode(mnt) + b"/" + b"n" * 1025)
    assert info.value.errno == errno.ENAMETOOLONG
