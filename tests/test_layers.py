"""The layers, read from the code's imports (module level and inside functions alike):

- no import cycles among the project's modules;
- drumscribe.models imports nothing of the project but itself;
- drumscribe.realtime never imports drumscribe.offline or the CLI;
- drumscribe.offline never imports the CLI;
- nothing imports the CLI modules except the CLI itself.

The graph is built with `ast` from every .py file of drumscribe/, realtime/, models/ and offline/, mapped to the
installed names of setup.cfg (realtime/engine.py is drumscribe.realtime.engine). `from a import b` is an edge to a.b
where a.b is one of our modules, else to a; relative imports are resolved against the importing module.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {  # folder of the repository -> its installed package (setup.cfg package_dir)
    "drumscribe": "drumscribe",
    "models": "drumscribe.models",
    "offline": "drumscribe.offline",
    "realtime": "drumscribe.realtime",
}
CLI_PACKAGE = "drumscribe"
"""The CLI: the modules directly in drumscribe/ (drumscribe/cli.py, audition_cli.py, ...)."""


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the project: installed name -> file."""
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project's modules that module `name` imports, anywhere in its file."""
    own_package = name if _is_package(name, modules) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own_package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")
                else:
                    found.add(target)
    resolved = set()
    for target in found:
        # `import drumscribe.realtime.engine` or a name inside a module: the longest of our modules it names
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def is_cli(name: str) -> bool:
    return name.rpartition(".")[0] == CLI_PACKAGE and name not in FOLDERS.values()


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    def within(name: str, package: str) -> bool:
        return name == package or name.startswith(package + ".")

    problems = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            edge = f"{name} imports {target}"
            if within(name, "drumscribe.models") and not within(target, "drumscribe.models"):
                problems.append(f"{edge}: drumscribe.models imports nothing of the project but itself")
            if within(name, "drumscribe.realtime") and within(target, "drumscribe.offline"):
                problems.append(f"{edge}: drumscribe.realtime never imports drumscribe.offline")
            if is_cli(target) and not is_cli(name):
                problems.append(f"{edge}: only the CLI imports the CLI modules")
    return problems


def test_the_graph_holds_every_module_and_the_known_edges():
    graph = import_graph()
    assert {"drumscribe.cli", "drumscribe.realtime.engine", "drumscribe.models.cnn",
            "drumscribe.offline.train", "drumscribe.realtime"} <= set(graph)
    assert "drumscribe.realtime.engine" in graph["drumscribe.cli"]
    assert "drumscribe.models.cnn" in graph["drumscribe.offline.train"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_layers():
    problems = layer_violations(import_graph())
    assert not problems, "\n".join(problems)


@pytest.fixture
def tree(tmp_path):
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    return tmp_path


def test_a_planted_function_level_cycle_is_found(tree):
    (tree / "realtime" / "a.py").write_text("from .b import x\n")
    (tree / "realtime" / "b.py").write_text("def f():\n    from drumscribe.realtime import a\n")
    cycle = find_cycle(import_graph(tree))
    assert cycle == ["drumscribe.realtime.a", "drumscribe.realtime.b", "drumscribe.realtime.a"]


def test_planted_layer_breaks_are_found(tree):
    (tree / "drumscribe" / "cli.py").write_text("")
    (tree / "models" / "m.py").write_text("def f():\n    from ..realtime import types\n")
    (tree / "realtime" / "types.py").write_text("")
    (tree / "realtime" / "r.py").write_text("import drumscribe.offline.train\nfrom drumscribe.cli import main\n")
    (tree / "offline" / "train.py").write_text("from ..cli import main\n")
    problems = layer_violations(import_graph(tree))
    assert len(problems) == 4, problems
    assert any(p.startswith("drumscribe.models.m imports drumscribe.realtime.types") for p in problems)
    assert any(p.startswith("drumscribe.realtime.r imports drumscribe.offline.train") for p in problems)
    assert any(p.startswith("drumscribe.realtime.r imports drumscribe.cli") for p in problems)
    assert any(p.startswith("drumscribe.offline.train imports drumscribe.cli") for p in problems)
