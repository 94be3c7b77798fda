"""Reads go through metering.selectors, state changes through metering.services (issue 11): no module
of the app reaches a read through `services`, services re-exports no read, and no module of any app
reads an attribute through a `services` alias of metering or payments that the package does not have
(a dropped re-export). Import-linter sees modules, not names, so this reads the code (payments' test
reuses it)."""

import ast
from importlib import import_module
from pathlib import Path
from types import ModuleType

from urja.metering import selectors, services


def reads_through_services(app: str, reads: ModuleType) -> list[str]:
    """`services.<read>` and `from …services import <read>` in every module of urja.<app> outside its
    services package (tests included); a read is a name its selectors module defines."""
    root = Path(reads.__file__).parent
    modules = [p for p in root.rglob("*.py") if "services" not in p.relative_to(root).parts]
    assert len(modules) > 20  # the walk found the app (api, views, tasks, tests …)
    found = []
    for path in modules:
        tree = ast.parse(path.read_text())
        where = path.relative_to(root)
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in (None, f"urja.{app}"):
                aliases |= {a.asname or a.name for a in node.names if a.name == "services"}
            if isinstance(node, ast.ImportFrom) and node.module in ("services", f"urja.{app}.services"):
                found += [f"{where}:{node.lineno} {a.name}" for a in node.names if hasattr(reads, a.name)]
        found += [
            f"{where}:{node.lineno} services.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and hasattr(reads, node.attr)
        ]
    return found


def test_no_module_of_metering_reads_through_services():
    assert reads_through_services("metering", selectors) == []


def reexported_reads(package: ModuleType, reads: ModuleType) -> set[str]:
    """Names the services package holds that are the very objects its selectors module defines or
    imports (a read, a constant, a model), whether listed in __all__ or not."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("__") and getattr(reads, name, None) is value and not isinstance(value, ModuleType)
    }


def missing_through_services_aliases(package: str) -> list[str]:
    """`<alias>.<name>` in any module of urja where `<alias>` is bound, in the nearest scope that binds
    it, by `from urja.<package> import services as <alias>` and the package has no `<name>`: the
    call would fail only when that line runs."""
    app = import_module(f"urja.{package}.services")
    src = Path(app.__file__).parents[2]
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
    found = []
    for path in src.rglob("*.py"):
        tree = ast.parse(path.read_text())
        parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

        def chain(node, parent=parent):
            """The scopes around `node`, innermost first."""
            while node in parent:
                node = parent[node]
                if isinstance(node, (*scopes, ast.Module)):
                    yield node

        bound: dict[tuple, bool] = {}  # (scope, name) -> bound to this package's services
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                scope = next(chain(node))
                for a in node.names:
                    is_it = isinstance(node, ast.ImportFrom) and node.module == f"urja.{package}"
                    bound[scope, a.asname or a.name] = is_it and a.name == "services"
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
                continue
            name = node.value.id
            binding = next((bound[scope, name] for scope in chain(node) if (scope, name) in bound), False)
            if binding and not hasattr(app, node.attr):
                found.append(f"{path.relative_to(src)}:{node.lineno} {name}.{node.attr}")
    return found


def test_services_reexports_no_read():
    assert reexported_reads(services, selectors) == set()


def test_every_name_other_apps_take_through_services_is_there():
    assert missing_through_services_aliases("metering") == []
