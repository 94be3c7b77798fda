"""The one list of Urja's apps, lowest layer first (docs/architecture.md, "Layers").

Everything that enumerates the apps derives from `URJA_APPS`: `settings.INSTALLED_APPS`, the API's
routers (`core.api`), the periodic tasks and background jobs (`core.scheduler`, `core.jobs`), the
long-running parts started by `urja run`, and the page URLs (`urls.py`). A new app is one line
here plus its place in the import-linter contract (pyproject.toml); a test checks the two agree.

This module imports no app: it sits below core, so settings and core can read it.
"""

from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

URJA_APPS: tuple[str, ...] = (
    "core",
    "network",
    "customers",
    "notifications",
    "tariffs",
    "metering",
    "billing",
    "payments",
    "servicedesk",
    "connections",
    "reports",
    "minigrid",
    "outreach",
    "channels",
    "portal",
    "backoffice",
    "demo",  # development only: the demo, the simulation, the tests' shared factories
)


def installed_apps() -> list[str]:
    """The apps' dotted names for settings.INSTALLED_APPS, in layer order."""
    return [f"urja.{app}" for app in URJA_APPS]


def has_module(app: str, name: str) -> bool:
    """Whether `urja.<app>.<name>` exists (found without importing it)."""
    return find_spec(f"urja.{app}.{name}") is not None


def app_modules(name: str) -> list[tuple[str, ModuleType]]:
    """(app, module) for every app that has a module `urja.<app>.<name>` (api, tasks, runtime …),
    imported, in layer order. An app without it is skipped; an import error inside it is raised."""
    found = []
    for app in URJA_APPS:
        try:
            module = import_module(f"urja.{app}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"urja.{app}.{name}":
                raise
            continue
        found.append((app, module))
    return found
