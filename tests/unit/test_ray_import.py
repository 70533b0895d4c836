"""One module owns importing Ray: nothing imports ``ray`` before its environment is settled.

Ray reads ``RAY_AUTH_MODE`` when it is first imported; a service that imported Ray
before setting it ran a driver without a token against a GCS that wanted one, and
every later start of that repository failed (issue 16). The rule, read from the
source (so a function that could run earlier is caught too, not only the path a
test happens to take):

* ``import ray`` / ``from ray ...`` appear only in ``ganga_like.ray_runtime`` (inside
  :func:`import_ray`) and in the actor drivers of ``RAY_SIDE_MODULES``, which run in
  Ray's workers;
* an actor driver is imported at module level only by another actor driver, and
  otherwise only inside a backend's ``make_actor`` (which the pool calls after
  ``ensure_ray``).

And, run for real in fresh interpreters: importing every other module of the package
leaves Ray unimported; ``import_ray`` settles the environment first; Ray imported
behind its back is named at once instead of failing later inside Ray.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from ganga_like.ray_runtime import RAY_SIDE_MODULES

PACKAGE = Path(__file__).resolve().parents[2] / "ganga_like"
OWNER = "ganga_like.ray_runtime"


@dataclasses.dataclass(frozen=True)
class Source:
    module: str  # ganga_like.backends.base; a package by its own name
    package: str  # what a relative import is relative to
    tree: ast.Module


def _sources() -> list[Source]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = dotted.removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        found.append(Source(module, package, ast.parse(path.read_text())))
    return found


def _imports(source: Source):
    """(imported name, enclosing function or None) for every import in the source."""

    def visit(node: ast.AST, function: str | None):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(child, child.name)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, function
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = source.package.split(".")
                    base = parts[: len(parts) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                yield target, function
                for alias in child.names:
                    yield f"{target}.{alias.name}", function
            yield from visit(child, function)

    yield from visit(source.tree, None)


def _is_ray(name: str) -> bool:
    return name == "ray" or name.startswith("ray.")


def test_only_ray_runtime_and_the_actor_drivers_import_ray():
    offenders = []
    for source in _sources():
        module = source.module
        for name, function in _imports(source):
            if not _is_ray(name):
                continue
            if module == OWNER and function == "import_ray":
                continue
            if module in RAY_SIDE_MODULES and function is None:
                continue
            offenders.append(f"{module} ({function or 'module level'}): import {name}")
    assert not offenders, "import Ray through ganga_like.ray_runtime.import_ray(): " + "; ".join(offenders)


def test_actor_drivers_are_reached_only_after_ray_is_started():
    offenders = []
    for source in _sources():
        if source.module in RAY_SIDE_MODULES:
            continue
        for name, function in _imports(source):
            if name in RAY_SIDE_MODULES and function != "make_actor":
                offenders.append(f"{source.module} ({function or 'module level'}) imports {name}")
    assert not offenders, offenders


def test_every_actor_driver_is_named_and_exists():
    sources = _sources()
    assert set(RAY_SIDE_MODULES) <= {s.module for s in sources}
    importing_ray = {s.module for s in sources if any(_is_ray(n) for n, _ in _imports(s))}
    assert importing_ray - {OWNER} == set(RAY_SIDE_MODULES)


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return subprocess.run([sys.executable, "-c", code], env=env, text=True, capture_output=True,
                          timeout=120)


def test_importing_the_package_leaves_ray_unimported():
    modules = [s.module for s in _sources()
               if s.module not in RAY_SIDE_MODULES and not s.module.endswith("__main__")]
    result = _fresh_python(
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    assert 'ray' not in sys.modules, name + ' imported ray'\n"
        "print('ok')\n")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_import_ray_settles_the_environment_before_ray_reads_it():
    result = _fresh_python(
        "import os, sys\n"
        "from ganga_like.ray_runtime import import_ray\n"
        "ray = import_ray()\n"
        "print(os.environ['RAY_AUTH_MODE'], os.environ['RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'])\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["token", "0"]


def test_ray_imported_behind_its_back_is_named_at_once():
    result = _fresh_python(
        "import ray\n"
        "from ganga_like.ray_runtime import import_ray\n"
        "import_ray()\n")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "Ray was imported before its environment was settled" in last, last
    assert "RAY_AUTH_MODE" in last and "import_ray()" in last, last
