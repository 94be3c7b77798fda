"""Reads go through metering.selectors, state changes through metering.services (issue 11): no module
of the app reaches a read through `services`, and services re-exports only the reads other apps still
take from it. Import-linter sees modules, not names, so this reads the code (payments' test reuses it)."""

import ast
from pathlib import Path
from types import ModuleType

from urja.metering import selectors, services

# reads still re-exported for other apps' callers (services/__init__.py names them and why)
KEPT_FOR_OTHER_APPS = {"Meter", "current_installation", "get_meter", "meters_config", "read_day"}


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


def test_services_reexports_no_other_read():
    reexported = {name for name in services.__all__ if hasattr(selectors, name) or name == "Meter"}
    assert reexported == KEPT_FOR_OTHER_APPS
