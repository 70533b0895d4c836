"""The package's layers, read from its imports: every import points downwards.

Imports are read from the source (module level and inside functions alike: an
import inside a function is still a dependency). Imports under
``if TYPE_CHECKING:`` are annotations only and never run, so they are not
dependencies. Each module belongs to a unit (a sub-package, or a top-level
module); a unit may import only units of lower layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ganga_like"

# Top to bottom. A unit may import units of later rows only (never its own row).
LAYERS = [
    ["cli"],
    ["gpi", "demo"],
    ["client", "service"],
    ["channel", "session"],
    ["recovery", "log_repair"],
    ["operations"],
    ["monitor"],
    ["postprocessing", "backend_pool", "export", "progress", "store_session"],
    ["backends.hosts", "backends.raycluster", "backends.local"],
    ["backends.runtime"],
    ["backends"],
    ["ray_runtime", "status_file", "repository", "queue_log"],
    ["model"],
    ["config", "status"],
    ["errors"],
]
RANK = {unit: row for row, units in enumerate(LAYERS) for unit in units}
SHARED_BACKEND_MODULES = ("base", "config")


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


def imports() -> list[tuple[str, str, str]]:
    """(importing module, imported module, where) for every import inside the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        module = module.removesuffix(".__init__")
        for node in _runtime_nodes(ast.parse(path.read_text())):
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
                if target.startswith("ganga_like.") and (PACKAGE.parent / (target.replace(".", "/") + ".py")).exists() \
                        or (PACKAGE.parent / target.replace(".", "/")).is_dir():
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


def test_the_reader_sees_imports_inside_functions():
    # binding used to reach the session from inside a function; such imports count.
    pairs = {(unit_of(m), unit_of(t)) for m, t, _ in imports()}
    assert ("cli", "client") in pairs  # cli imports the client inside its commands
