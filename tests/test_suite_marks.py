"""The slow marks of conftest name tests and modules that exist (a stale name would do nothing)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import COLLECTED_IDS, COLLECTED_MODULES, SLOW_MODULES, SLOW_TESTS

TESTS = Path(__file__).resolve().parent


def test_every_slow_module_exists() -> None:
    missing = [m for m in SLOW_MODULES if not (TESTS / m).is_file()]
    assert not missing, missing


def test_every_slow_test_exists() -> None:
    missing = []
    functions: dict[str, set[str]] = {}  # module → its test functions (each parsed once)
    for name in sorted(SLOW_TESTS):
        module, _, function = name.partition("::")
        function = function.partition("[")[0]  # module::function[parameter id]
        if module not in functions:
            tree = ast.parse((TESTS / module).read_text(encoding="utf-8"))
            functions[module] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if function not in functions[module]:
            missing.append(name)
    assert not missing, missing


def test_every_slow_parameter_id_was_collected() -> None:
    # a wrong parameter id would match no test: checked for every module of this session
    with_ids = [n for n in SLOW_TESTS if "[" in n and n.partition("::")[0] in COLLECTED_MODULES]
    assert COLLECTED_MODULES, "no module recorded: the collection hook did not run"
    stale = [n for n in with_ids if n not in COLLECTED_IDS]
    assert not stale, f"parameter ids of SLOW_TESTS that name no test: {stale}"
