"""vufuse's pyfuse3 offers every public name of pyfuse3 3.5.0, checked against its own stubs.

The names come from the sdist's ``__init__.pyi`` (module functions, classes with their members,
constants, type aliases), ``_pyfuse3.py`` (the Operations handlers) and ``asyncio.py``; the
parameters of each function must match by name, so keyword callers keep working.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from pyfuse3_sdist import sdist_dir

from vufuse import pyfuse3
from vufuse.pyfuse3 import asyncio as pyfuse3_asyncio


@pytest.fixture(scope="module")
def stub_module() -> ast.Module:
    return ast.parse((sdist_dir() / "src" / "pyfuse3" / "__init__.pyi").read_text())


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [arg.arg for arg in function.args.args if arg.arg != "self"]


def test_module_level_names(stub_module: ast.Module) -> None:
    missing = []
    for node in stub_module.body:
        if isinstance(node, ast.ImportFrom) and node.module == "._pyfuse3":
            names = [alias.asname or alias.name for alias in node.names]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        elif isinstance(node, ast.Assign):
            names = [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
        else:
            continue
        missing += [name for name in names if not hasattr(pyfuse3, name)]
    assert missing == []


def test_function_parameters(stub_module: ast.Module) -> None:
    for node in stub_module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            ours = list(inspect.signature(getattr(pyfuse3, node.name)).parameters)
            assert ours == _parameters(node), node.name
            assert inspect.iscoroutinefunction(getattr(pyfuse3, node.name)) == isinstance(
                node, ast.AsyncFunctionDef
            ), node.name


def test_class_members(stub_module: ast.Module) -> None:
    for node in stub_module.body:
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(pyfuse3, node.name)
        for member in node.body:
            if isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
                name = member.target.id
                instance = cls.__new__(cls)
                if hasattr(cls, "__init__") and node.name != "PollHandle":
                    instance = cls(1) if node.name == "FUSEError" else cls()
                assert hasattr(instance, name), f"{node.name}.{name}"
            elif isinstance(member, ast.FunctionDef):
                assert hasattr(cls, member.name), f"{node.name}.{member.name}"


def test_operations_handlers() -> None:
    source = (sdist_dir() / "src" / "pyfuse3" / "_pyfuse3.py").read_text()
    operations = next(
        node for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef) and node.name == "Operations"
    )  # fmt: skip
    for member in operations.body:
        if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
            ours = getattr(pyfuse3.Operations, member.name)
            assert list(inspect.signature(ours).parameters)[1:] == _parameters(member), member.name
            assert inspect.iscoroutinefunction(ours) == isinstance(member, ast.AsyncFunctionDef)
        elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
            assert hasattr(pyfuse3.Operations, member.target.id)


def test_asyncio_module_names() -> None:
    source = (sdist_dir() / "src" / "pyfuse3" / "asyncio.py").read_text()
    public = [
        node.name for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
    ]  # fmt: skip
    assert [name for name in public if not hasattr(pyfuse3_asyncio, name)] == []


def test_constants_have_linux_values() -> None:
    import errno
    import os

    assert pyfuse3.ROOT_INODE == 1
    assert pyfuse3.ENOATTR == errno.ENODATA
    assert (pyfuse3.RENAME_NOREPLACE, pyfuse3.RENAME_EXCHANGE) == (1, 2)
    assert pyfuse3._NANOS_PER_SEC == 10**9
    assert pyfuse3.default_options == frozenset({"default_permissions"})
    assert Path(pyfuse3.__file__).parent.name == "pyfuse3"
    assert os.sep + "vufuse" + os.sep in pyfuse3.__file__
