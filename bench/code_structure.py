"""Figures of a checkout's package structure: modules, import cycles, imports inside functions.

    python -m bench.code_structure [CHECKOUT]     (default: this checkout)

Reads every ``gee_ref/**/*.py`` of CHECKOUT with ``ast`` (nothing is imported) and prints:
the number of modules and of modules at the top of ``gee_ref/``; the import statements that are
not at a module's top level (inside a function, a class or a ``try``), by module imported; the
import cycles, as the strongly connected components of the graph "module A imports module B"
(``from pkg import sub`` is an edge to ``pkg.sub`` when that is a module; an import of one's own
parent package is left out, since Python always loads it first); and the largest file. Issue 11
compared these before and after the restructure; ``tests/test_layers.py`` holds the rules.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_files(checkout: Path) -> dict:
    """{dotted module name: path} of every module of gee_ref in ``checkout``."""
    modules = {}
    for path in sorted((checkout / "gee_ref").rglob("*.py")):
        parts = list(path.relative_to(checkout).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(module: str, path: Path, node, modules: dict) -> list:
    """The gee_ref modules an Import / ImportFrom statement of ``module`` loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
    if len(submodules) == len(node.names):
        return submodules
    return ([base] if base in modules else []) + submodules


def import_graph(modules: dict):
    """({module: set of modules it imports}, [(module, statement text) of imports not at the top])."""
    edges, inner = {name: set() for name in modules}, []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if id(node) not in top_level:
                inner.append((name, ast.unparse(node)))
            for target in imported_modules(name, path, node, modules):
                if target != name and not name.startswith(target + "."):
                    edges[name].add(target)
    return edges, inner


def cycles(edges: dict) -> list:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    checkout = Path(argv[0] if argv else Path(__file__).resolve().parents[1])
    if not (checkout / "gee_ref").is_dir():
        print(f"error: {checkout} holds no gee_ref/ folder", file=sys.stderr)
        return 2
    modules = module_files(checkout)
    edges, inner = import_graph(modules)
    found = cycles(edges)
    top = [name for name, path in modules.items() if path.parent == checkout / "gee_ref"]
    lines = {name: len(path.read_text().splitlines()) for name, path in modules.items()}
    largest = max(lines, key=lines.get)
    print(f"modules: {len(modules)} ({len(top)} at the top of gee_ref/), {sum(lines.values()):,} lines")
    print(f"largest file: {modules[largest].relative_to(checkout)}, {lines[largest]} lines")
    print(f"import cycles: {len(found)} ({sum(map(len, found))} modules)")
    for component in found:
        print("  " + " <-> ".join(component))
    print(f"imports not at a module's top level: {len(inner)}")
    for name, statement in inner:
        print(f"  {name}: {statement}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
