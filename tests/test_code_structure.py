"""bench/code_structure.py, the figures issue 11 compared, on a hand-made package."""
from bench import code_structure


def write(root, relative, text=""):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cycles_inner_imports_and_parent_packages(tmp_path, capsys):
    write(tmp_path, "gee_ref/__init__.py")
    write(tmp_path, "gee_ref/a.py", "from gee_ref import b\n")
    write(tmp_path, "gee_ref/b.py", "def f():\n    import gee_ref.a\n")  # a cycle, through an inner import
    write(tmp_path, "gee_ref/pkg/__init__.py", "from gee_ref.pkg.c import x\n")
    write(tmp_path, "gee_ref/pkg/c.py", "from gee_ref.pkg import d\nx = 1\n")  # its parent: no cycle
    write(tmp_path, "gee_ref/pkg/d.py", "from . import c as _c\ntry:\n    import numpy\nexcept ImportError:\n    pass\n")
    modules = code_structure.module_files(tmp_path)
    assert sorted(modules) == ["gee_ref", "gee_ref.a", "gee_ref.b", "gee_ref.pkg", "gee_ref.pkg.c", "gee_ref.pkg.d"]
    edges, inner = code_structure.import_graph(modules)
    assert edges["gee_ref.pkg.c"] == {"gee_ref.pkg.d"} and edges["gee_ref.pkg.d"] == {"gee_ref.pkg.c"}
    assert sorted(code_structure.cycles(edges)) == [["gee_ref.a", "gee_ref.b"], ["gee_ref.pkg.c", "gee_ref.pkg.d"]]
    assert [name for name, _ in inner] == ["gee_ref.b", "gee_ref.pkg.d"]
    assert code_structure.main([str(tmp_path)]) == 0
    assert "import cycles: 2 (4 modules)" in capsys.readouterr().out


def test_this_checkout_has_no_cycle(capsys):
    assert code_structure.main([]) == 0
    assert "import cycles: 0 (0 modules)" in capsys.readouterr().out
