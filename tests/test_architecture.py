"""The house rules of the package's layout: floors import downward only, and nothing imports in a circle.

The import graph is read from the source (every ``import`` statement, those inside functions too), so a
lazy import that would close a cycle counts as much as one at the top of a file.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "minicnn"
GROUND_FLOOR = ("minicnn.checks", "minicnn.shapes", "minicnn.device", "minicnn.npz")


def module_files():
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def import_graph():
    """{module: set of minicnn modules it imports}, a ``from package import submodule`` counted as the submodule."""
    files = module_files()

    def known(name):
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, path in files.items():
        targets = set()
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets.update(known(f"{base}.{alias.name}") or known(base) for alias in node.names)
        graph[module] = {target for target in targets if target and target != module}
    return graph


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle_lazy_imports_included():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_ground_floor_imports_nothing_from_minicnn():
    graph = import_graph()
    for module in GROUND_FLOOR:
        assert module in graph, module
        assert graph[module] == set(), (module, sorted(graph[module]))


def test_the_training_loop_and_checkpoints_know_no_model():
    graph = import_graph()
    for module in ("minicnn.train", "minicnn.checkpoint"):
        assert not any(target.startswith("minicnn.models") for target in graph[module]), sorted(graph[module])
