"""The core under caproto/ performs no I/O: checked by reading every module's imports and calls (AST)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).parent.parent / "caproto"
FORBIDDEN_MODULES = {"socket", "select", "selectors", "asyncio", "trio", "threading", "curio"}
# Subpackages whose job is I/O: the clients and command-line tools built on the core.
IO_SUBPACKAGES = {"client", "trio", "sync", "commandline"}


def io_violations(source: str, filename: str = "<string>") -> list[str]:
    """Every import of an I/O module, and every time.sleep call, in ``source``, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    sleep_names = set()      # local names bound to time.sleep
    time_names = set()       # local names bound to the time module
    found = []

    def forbid(node: ast.AST, module: str) -> None:
        if module.split(".")[0] in FORBIDDEN_MODULES:
            found.append(f"{filename}:{node.lineno}: imports {module}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                forbid(node, alias.name)
                if alias.name == "time":
                    time_names.add(alias.asname or "time")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            forbid(node, node.module)
            if node.module == "time":
                sleep_names.update(a.asname or a.name for a in node.names if a.name == "sleep")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "sleep" and isinstance(func.value, ast.Name)
                and func.value.id in time_names) or (isinstance(func, ast.Name) and func.id in sleep_names):
            found.append(f"{filename}:{node.lineno}: calls time.sleep")
        # importlib.import_module("socket") / __import__("socket") would dodge the import check.
        dynamic = (isinstance(func, ast.Name) and func.id == "__import__") or (
            isinstance(func, ast.Attribute) and func.attr == "import_module")
        if dynamic and node.args and isinstance(node.args[0], ast.Constant) and isinstance(
                node.args[0].value, str):
            forbid(node, node.args[0].value)
    return found


def core_modules() -> list[Path]:
    return sorted(path for path in CORE.rglob("*.py")
                  if not IO_SUBPACKAGES & set(path.relative_to(CORE).parts[:-1]))


def test_core_modules_exist():
    names = {path.name for path in core_modules()}
    assert {"__init__.py", "constants.py", "errors.py", "states.py"} <= names


def test_no_core_module_imports_io_or_sleeps():
    found = []
    for path in core_modules():
        found += io_violations(path.read_text(), str(path.relative_to(CORE.parent)))
    assert found == [], "I/O in the sans-I/O core:\n" + "\n".join(found)


@pytest.mark.parametrize("source, expected", [
    ("import socket", "imports socket"),
    ("import trio.lowlevel as tl", "imports trio.lowlevel"),
    ("from asyncio import sleep", "imports asyncio"),
    ("from selectors import DefaultSelector", "imports selectors"),
    ("import threading", "imports threading"),
    ("def f():\n    import curio", "imports curio"),
    ("import time\ntime.sleep(1)", "calls time.sleep"),
    ("import time as t\nt.sleep(1)", "calls time.sleep"),
    ("from time import sleep as nap\nnap(1)", "calls time.sleep"),
    ("import importlib\nimportlib.import_module('select')", "imports select"),
    ("__import__('socket')", "imports socket"),
])
def test_checker_catches_io(source, expected):
    found = io_violations(source)
    assert any(expected in line for line in found), f"{source!r}: expected {expected!r}, got {found}"


@pytest.mark.parametrize("source", [
    "import time\nnow = time.monotonic()",
    "import struct, enum",
    "from .framing import StreamParser",
    "from typing import Callable",
])
def test_checker_allows_pure_code(source):
    assert io_violations(source) == []
