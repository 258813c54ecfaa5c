"""The layer rules of docs/architecture.md, checked by reading the imports (no import runs)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "coverage"

#: Layer of each module, by the longest matching dotted prefix (L0 lowest).
LAYERS: dict[str, int] = {
    "coverage": 8,  # the public API re-exports every layer; nothing inside imports it
    **dict.fromkeys(["coverage.settings", "coverage.errors", "coverage.schemas",
                     "coverage.labels", "coverage.files", "coverage._validate", "coverage.geo",
                     "coverage._version", "coverage.safe_text",
                     "coverage.progress", "coverage.classes"], 0),
    **dict.fromkeys(["coverage.cog", "coverage.secrecy", "coverage.results",
                     "coverage.demo"], 1),
    "coverage.io": 2,
    "coverage.routing": 3,
    **dict.fromkeys(["coverage.whitezones", "coverage.accessibility", "coverage.waiting",
                     "coverage.siting", "coverage.isochrones", "coverage.scenario"], 4),
    "coverage.batch": 5,
    **dict.fromkeys(["coverage.export", "coverage.maps"], 6),
    **dict.fromkeys(["coverage.cli", "coverage.app"], 7),
}
FACES = ("argparse", "streamlit", "coverage.cli", "coverage.app")


def _modules() -> dict[str, Path]:
    root = PACKAGE.parent
    return {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    """Layer of a dotted module name (the longest prefix of :data:`LAYERS`)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    msg = f"module {module} has no layer in tests/test_layers.py"
    raise AssertionError(msg)


def _imports(path: Path) -> list[tuple[str, bool, ast.AST]]:
    """(imported dotted name, inside a function?, node) for every import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function = {id(n) for f in ast.walk(tree)
                   if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in in_function, node) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out += [(f"{node.module}.{a.name}", id(node) in in_function, node)
                    for a in node.names]
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        layer_of(module)


def test_imports_point_down_and_never_to_the_faces() -> None:
    modules = _modules()
    bad = []
    for module, path in modules.items():
        if module == "coverage":
            continue
        own = layer_of(module)
        for name, _, node in _imports(path):
            if own <= 6 and name.split(".")[0] in {"argparse", "streamlit"}:
                bad.append(f"{module}:{node.lineno} imports {name}")
            target = _resolve(name, modules) if name.startswith("coverage") else None
            if target is None or target == module:
                continue
            if layer_of(target) > own or (own <= 6 and target.startswith(FACES)):
                bad.append(f"{module}:{node.lineno} (L{own}) imports {target} "
                           f"(L{layer_of(target)})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(set(bad)))


def test_no_package_import_inside_a_function_outside_the_cli() -> None:
    bad = [f"{module}:{node.lineno} imports {name}"
           for module, path in _modules().items() if not module.startswith("coverage.cli")
           for name, inside, node in _imports(path)
           if inside and name.startswith("coverage")]
    assert not bad, "imports inside functions:\n" + "\n".join(sorted(set(bad)))


def test_no_import_circle() -> None:
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for module, path in modules.items():
        for name, _, _ in _imports(path):
            target = _resolve(name, modules) if name.startswith("coverage") else None
            if target and target not in {module, "coverage"}:
                edges.setdefault(module, set()).add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                return [*stack[stack.index(w):], w]
            if w not in state and (cycle := visit(w)):
                return cycle
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(modules):
        if v not in state and (cycle := visit(v)):
            raise AssertionError("import circle: " + " -> ".join(cycle))


def test_no_guarded_import_of_the_package() -> None:
    bad = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Try) and any(
                    isinstance(h.type, ast.Name) and h.type.id in {"ImportError",
                                                                   "ModuleNotFoundError"}
                    for h in node.handlers):
                names = [n for s in node.body for n in ast.walk(s)
                         if isinstance(n, ast.Import | ast.ImportFrom)]
                if any((getattr(n, "module", None) or "").startswith("coverage")
                       or any(a.name.startswith("coverage") for a in n.names) for n in names):
                    bad.append(f"{module}:{node.lineno}")
    assert not bad, "try: import coverage… except ImportError:\n" + "\n".join(bad)


def test_every_module_declares_its_public_names() -> None:
    missing = [m for m, p in _modules().items()
               if "__all__" not in p.read_text(encoding="utf-8")]
    assert not missing, "modules without __all__: " + ", ".join(sorted(missing))
