"""The folders are the layers of DESIGN.md section 2 (gee_ref.LAYERS): every import of gee_ref, read
from the source (ast, imports inside functions too), runs to the same or a lower layer, never in
a cycle (between modules or between packages), and sits at the top of its file unless it is an
optional third-party package; the library never imports a command."""
import ast
from pathlib import Path

import pytest

import gee_ref
from bench.code_structure import cycles

ROOT = Path(gee_ref.__file__).resolve().parent
OPTIONAL_THIRD_PARTY = {"cupy", "cupyx", "dask", "distributed", "matplotlib", "torch", "sklearn"}
COMMANDS = {"train", "evolve", "params", "report", "golden", "verify", "reproduce"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def resolve(name: str, known) -> str:
    """``gee_ref.a.b`` as the module it names: itself, or its package when ``b`` is not a module."""
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def imports(path: Path, known):
    """[(imported gee_ref module, line, at the top of the file)] and [(third-party root, top)]."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found, third = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if resolve(n, known) == n else node.module for n in names]
        else:
            continue
        for name in names:
            at_top = id(node) in top_level
            if name.split(".")[0] == "gee_ref":
                found.append((resolve(name, known), node.lineno, at_top))
            else:
                third.append((name.split(".")[0], node.lineno, at_top))
    return found, third


def unit(module: str) -> str:
    """The package or top-level module of gee_ref that ``module`` belongs to ("" for gee_ref itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def edges():
    known = modules()
    result = []
    for name, path in known.items():
        found, _ = imports(path, known)
        result += [(name, target, line) for target, line, _ in found if target != name]
    return result


def test_every_package_and_top_level_module_has_a_layer_and_says_it():
    units = {unit(m) for m in modules()} - {""}
    assert units == set(gee_ref.LAYERS), (sorted(units - set(gee_ref.LAYERS)), sorted(set(gee_ref.LAYERS) - units))
    for name, layer in gee_ref.LAYERS.items():
        init = ROOT / name / "__init__.py"
        if init.exists():
            assert f"Layer {layer}" in (ast.get_docstring(ast.parse(init.read_text())) or ""), name


def test_no_import_runs_up_the_layers():
    wrong = [(source, target, line) for source, target, line in edges() if unit(target) and unit(source)
             and gee_ref.LAYERS[unit(target)] > gee_ref.LAYERS[unit(source)]]
    assert not wrong, wrong


def test_the_library_never_imports_a_command():
    wrong = [(s, t, line) for s, t, line in edges() if unit(t) in COMMANDS and unit(s) not in COMMANDS]
    assert not wrong, wrong


@pytest.mark.parametrize("level", ["module", "package"])
def test_no_import_cycle(level):
    graph = {}
    for source, target, _ in edges():
        a, b = (source, target) if level == "module" else (unit(source), unit(target))
        if a != b and a and b:
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set())
    assert cycles(graph) == []


def test_imports_are_at_the_top_but_for_optional_packages():
    known = modules()
    inner = []
    for name, path in known.items():
        found, third = imports(path, known)
        inner += [(name, target, line) for target, line, top in found if not top]
        inner += [(name, root, line) for root, line, top in third if not top and root not in OPTIONAL_THIRD_PARTY]
    assert not inner, inner


def test_the_checks_see_a_violation():
    """The walk itself: an import that runs up the layers, and a cycle, are found when present."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    known = modules()
    source = ROOT / "ops" / "add.py"
    found, _ = imports(source, known)
    assert ("gee_ref.ops.broadcast", 4, True) in found or any(t == "gee_ref.ops.broadcast" for t, *_ in found)
    assert resolve("gee_ref.runs.training_run.run_training", known) == "gee_ref.runs.training_run"
