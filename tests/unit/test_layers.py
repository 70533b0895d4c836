"""The package's layers, read from its imports: every import points downwards.

Imports are read from the source (module level and inside functions alike: an
import inside a function is still a dependency). Each module belongs to a unit (a
folder, or a top-level module); a unit may import only units of lower layers.
Imports under ``if TYPE_CHECKING:`` never run, but they stand for real calls
through the object they type: they count for the named forbidden edges (a face
never reaches the engine, the service or an actor; the engine never imports a
face; backends never import the engine) and for the cycle test (no import cycle
between modules, type-only ones included).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ganga_like"

# Top to bottom, one row per folder (or top-level module). A unit may import units of
# later rows only (never its own row).
LAYERS = [
    ["cli"],
    ["gpi"],
    ["client", "service"],
    ["web"],  # the web view: a face, but it runs inside the service, which starts it
    ["engine"],
    ["store_session"],
    ["event_rules",  # pure, beside status: reads the backends' event kinds and detail words
     "bex"],  # the BEX queue's formats and files (the service writes them, faces parse job files)
    ["backends.hosts", "backends.raycluster", "backends.local", "backends.slurm"],
    ["backends.runtime"],
    ["backends"],
    ["channel", "ray_runtime", "repository", "queue_log", "textfile"],
    ["model"],
    ["config", "status"],
    ["errors", "ray_stand_in"],  # ray_stand_in: a standard-library script the raylet runs
]
RANK = {unit: row for row, units in enumerate(LAYERS) for unit in units}
SHARED_BACKEND_MODULES = ("base", "config", "resources")
FACES = ("cli", "gpi", "client")
# Modules that run Ray's side of a backend (and the shared actor flow): no face imports them.
ACTOR_MODULES = ("ganga_like.backends.runtime.actor", "ganga_like.backends.local.actor",
                 "ganga_like.backends.hosts.actor", "ganga_like.backends.hosts.agent",
                 "ganga_like.backends.hosts.nodes", "ganga_like.backends.hosts.gang",
                 "ganga_like.backends.raycluster.actor", "ganga_like.backends.raycluster.task",
                 "ganga_like.backends.slurm.actor")
# The edges the layers forbid, named: (importing units, imported units or modules, why).
FORBIDDEN = [
    (FACES, ("engine", "service"), "a face (the CLI, the GPI, a client) talks to the service, "
                                   "never to the engine or the service's process"),
    (FACES, ACTOR_MODULES, "a face never imports a backend's actor (it would import Ray)"),
    (FACES, ("ray_runtime",), "a face never starts or imports Ray: only the service side does"),
    (("web",), ("engine", "ray_runtime") + ACTOR_MODULES, "the web view reads the database and "
                                                          "asks the service for every verb, as a "
                                                          "client does: never the engine or Ray"),
    (("engine",), FACES + ("web",), "the engine never imports a face"),
    (("backends", "backends.runtime", "backends.local", "backends.raycluster", "backends.hosts",
      "backends.slurm"),
     ("engine", "service") + FACES, "backends never import the engine, the service or a face"),
]


def unit_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "backends" and parts[2] not in SHARED_BACKEND_MODULES:
        return f"backends.{parts[2]}"
    return parts[1] if len(parts) > 1 else "ganga_like"


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports(type_only_too: bool = False) -> list[tuple[str, str, str]]:
    """(importing module, imported module, where) for every import inside the package;
    those under ``if TYPE_CHECKING:`` too with ``type_only_too``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        module = module.removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        for node in (ast.walk(tree) if type_only_too else _runtime_nodes(tree)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [target] + [f"{target}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                module_file = PACKAGE.parent / (target.replace(".", "/") + ".py")
                package_dir = PACKAGE.parent / target.replace(".", "/")
                if (target.startswith("ganga_like.") and module_file.exists()) or package_dir.is_dir():
                    found.append((module, target, f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"))
    return found


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m, _, _ in imports()} | {unit_of(t) for _, t, _ in imports()}
    units.discard("ganga_like")
    assert units <= set(RANK), f"units without a layer: {sorted(units - set(RANK))}"


def test_imports_point_downwards():
    wrong = []
    for module, target, where in imports():
        source, dest = unit_of(module), unit_of(target)
        if source == dest or dest == "ganga_like" or source == "ganga_like":
            continue
        if RANK[dest] <= RANK[source]:
            wrong.append(f"{where}: {source} imports {dest}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(set(wrong)))


def test_no_forbidden_edge():
    wrong = []
    for module, target, where in imports(type_only_too=True):
        source, dest = unit_of(module), unit_of(target)
        for importers, imported, why in FORBIDDEN:
            if source in importers and (dest in imported or target in imported):
                wrong.append(f"{where}: {module} imports {target}: {why}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_no_import_cycle_type_only_imports_included():
    graph: dict[str, set[str]] = {}
    for module, target, _where in imports(type_only_too=True):
        if target != module and (PACKAGE.parent / (target.replace(".", "/") + ".py")).exists():
            graph.setdefault(module, set()).add(target)
    cycles = [cycle for cycle in _cycles(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_reader_sees_imports_inside_functions():
    # binding used to reach the session from inside a function; such imports count.
    pairs = {(unit_of(m), unit_of(t)) for m, t, _ in imports()}
    assert ("cli", "client") in pairs  # cli imports the client inside its commands
