"""The package's shape: no import cycles, and edgeseg modules imported inside functions only
to load something heavy lazily (the layer contracts themselves are `make lint`)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

import edgeseg

ROOT = Path(edgeseg.__file__).parent


def test_no_import_cycles():
    graph = grimp.build_graph("edgeseg")
    cycles = sorted({tuple(sorted((a, b))) for a in graph.modules
                     for b in graph.find_modules_directly_imported_by(a)
                     if graph.chain_exists(importer=b, imported=a)})
    assert cycles == []


def in_function_imports() -> list[str]:
    found = []

    def walk(node, in_function, path):
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                names = [child.module or ""] if isinstance(child, ast.ImportFrom) \
                    else [a.name for a in child.names]
                if any(n.startswith("edgeseg") for n in names):
                    found.append(str(path.relative_to(ROOT)))
            walk(child, in_function or isinstance(child, (ast.FunctionDef,
                                                           ast.AsyncFunctionDef)), path)

    for path in ROOT.rglob("*.py"):
        walk(ast.parse(path.read_text()), False, path)
    return found


def test_edgeseg_imports_inside_functions_are_only_lazy_loading():
    # cli/main.py loads a command's module through importlib, not an import statement; what
    # remains is the package root's create_model/list_models, which keep `import edgeseg`
    # free of torch.
    assert sorted(in_function_imports()) == ["__init__.py", "__init__.py"]
