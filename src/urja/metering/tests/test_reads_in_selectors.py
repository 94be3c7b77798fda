"""Reads go through metering.selectors, state changes through metering.services (issue 11): no module
of the app reaches a read through `services`, services re-exports no read, and no module of any app
reads an attribute through a `services` alias of metering or payments that the package does not have
(a dropped re-export). Import-linter sees modules, not names, so this reads the code (payments',
minigrid's and channels' tests reuse it; `reads_taken_through_services` holds an app to taking no read
through any app's `services`, the mixed alias)."""

import ast
from functools import cache
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


@cache
def _through_services_aliases() -> tuple[tuple[str, int, str, str, str], ...]:
    """(file, line, alias, name, package) for every `<alias>.<name>` in any module of urja where
    `<alias>` is bound, in the nearest scope that binds it, by `from urja.<package> import services as
    <alias>`. The tree is walked once a test process, whichever packages are asked about."""
    src = Path(import_module("urja").__file__).parent
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

        bound: dict[tuple, str | None] = {}  # (scope, name) -> the package whose services it is bound to
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                scope = next(chain(node))
                for a in node.names:
                    is_it = isinstance(node, ast.ImportFrom) and (node.module or "").count(".") == 1
                    is_it = is_it and node.module.startswith("urja.") and a.name == "services"
                    bound[scope, a.asname or a.name] = node.module.split(".")[1] if is_it else None
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
                continue
            name = node.value.id
            package = next((bound[scope, name] for scope in chain(node) if (scope, name) in bound), None)
            if package:
                found.append((str(path.relative_to(src)), node.lineno, name, node.attr, package))
    return tuple(found)


def missing_through_services_aliases(package: str) -> list[str]:
    """`<alias>.<name>` in any module of urja where `<alias>` is bound, in the nearest scope that binds
    it, by `from urja.<package> import services as <alias>` and the package has no `<name>`: the
    call would fail only when that line runs."""
    app = import_module(f"urja.{package}.services")
    return [
        f"{where}:{line} {alias}.{name}"
        for where, line, alias, name, bound in _through_services_aliases()
        if bound == package and not hasattr(app, name)
    ]


def test_services_reexports_no_read():
    assert reexported_reads(services, selectors) == set()


def test_every_name_other_apps_take_through_services_is_there():
    assert missing_through_services_aliases("metering") == []


def _services_package(module: str | None, level: int, names: list, here: str) -> list[tuple[str, str, str]]:
    """(bound name, owning app, taken name) for one `from … import …` line of module `here` that takes
    something through a services module: `from urja.<owner> import services [as x]` binds x to the
    package (taken name ''), `from urja.<owner>.services[.sub] import f` takes f."""
    if level:
        module = ".".join([*here.split(".")[:-level], *([module] if module else [])])
    parts = (module or "").split(".")
    if parts[0] != "urja" or len(parts) < 2:
        return []
    owner = parts[1]
    if len(parts) == 2:
        return [(a.asname or a.name, owner, "") for a in names if a.name == "services"]
    if parts[2] == "services":
        return [(a.asname or a.name, owner, a.name) for a in names]
    return []


def reads_taken_through_services(app: str) -> list[str]:
    """Every name a module of urja.<app> (its own services included, tests too) takes through a
    `services` module of any app (`alias.<name>` where the alias is bound, in the nearest scope that
    binds it, by `from urja.<owner> import services as alias`, or `from urja.<owner>.services import
    <name>`) that is a read: a name the owner's selectors module defines or imports (a function, a
    constant, a model; not a module, not a name selectors takes from that services module). Such a
    services module is a mixed alias: the caller should import the read from `<owner>.selectors`."""
    root = Path(import_module(f"urja.{app}").__file__).parent
    src = root.parents[1]
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)

    def is_read(owner: str, name: str) -> bool:
        """`name` is something `<owner>.selectors` holds (not a module, not a name it takes from its own
        services), or what `<owner>.services` holds under it comes from any app's selectors."""
        if name.startswith("__"):
            return False
        try:
            taken = getattr(import_module(f"urja.{owner}.services"), name, None)
        except ModuleNotFoundError:
            taken = None
        if (getattr(taken, "__module__", None) or "").endswith(".selectors"):
            return True
        try:
            value = getattr(import_module(f"urja.{owner}.selectors"), name)
        except (ModuleNotFoundError, AttributeError):
            return False
        where = getattr(value, "__module__", None) or ""
        return not (isinstance(value, ModuleType) or where.startswith(f"urja.{owner}.services"))

    paths = sorted(p for p in root.rglob("*.py") if "migrations" not in p.parts)
    assert len(paths) > 10  # the walk found the app
    found = []
    for path in paths:
        here = ".".join(path.relative_to(src).with_suffix("").parts)
        if path.name == "__init__.py":
            here += ".__init__"
        tree = ast.parse(path.read_text())
        parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

        def chain(node, parent=parent):
            """The scopes around `node`, innermost first."""
            while node in parent:
                node = parent[node]
                if isinstance(node, (*scopes, ast.Module)):
                    yield node

        bound: dict[tuple, str | None] = {}  # (scope, name) -> the app whose services package it is
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                scope = next(chain(node))
                for a in node.names:
                    bound[scope, a.asname or a.name] = None
            if isinstance(node, ast.ImportFrom):
                scope = next(chain(node))
                for name, owner, taken in _services_package(node.module, node.level, node.names, here):
                    if not taken:
                        bound[scope, name] = owner
                    elif is_read(owner, taken):
                        found.append(f"{path.relative_to(root)}:{node.lineno} {owner}.services {taken}")
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
                continue
            name = node.value.id
            owner = next((bound[scope, name] for scope in chain(node) if (scope, name) in bound), None)
            if owner and is_read(owner, node.attr):
                found.append(f"{path.relative_to(root)}:{node.lineno} {owner}.services.{node.attr}")
    return found
