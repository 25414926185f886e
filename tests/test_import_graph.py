"""skae's own import graph has no cycles.

Every ``import`` of a ``skae`` module counts, at module level or deferred
inside a function (a deferred import only hides a cycle from the
interpreter, not from the reader). The one exception is the root package
``skae`` itself: it is the public facade that imports every estimator, and a
call-time lookup of ``skae.__all__`` (estimator discovery) or
``skae.__version__`` does not make an implementation module depend on
another.
"""

import ast
import pathlib

import skae

ROOT = pathlib.Path(skae.__file__).parent


def _module_name(path):
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(path, modules):
    """The skae modules that ``path`` imports (anywhere in the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from skae import _engine`` imports the module skae._engine.
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in modules
                else node.module
                for alias in node.names
            ]
        else:
            continue
        found.update(n for n in names if n in modules and n != "skae")
    return found


def _graph():
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _find_cycle(graph):
    """One cycle as a list of module names, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_is_read():
    graph = _graph()
    assert "skae._engine" in graph["skae._base"]
    assert "skae._objectives" in graph["skae._pretraining"]


def test_a_cycle_is_found():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_inside_skae():
    assert _find_cycle(_graph()) is None


def _top_level_imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_engine_imports_skorch():
    modules = _modules().items()
    users = [name for name, path in modules if "skorch" in _top_level_imports(path)]
    assert users == ["skae._engine"]
