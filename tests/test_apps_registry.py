"""urja.apps_registry is the one list of apps: it agrees with the import-linter layers, names every
app package, and settings, the URLs, the API, the periodic tasks and the job table all follow it."""

import tomllib
from pathlib import Path

import pytest
from django.conf import settings

import urja.core
from urja import apps_registry, urls
from urja.apps_registry import URJA_APPS, app_modules, has_module, installed_apps
from urja.core.api import api
from urja.core.scheduler import collect

SRC = Path(apps_registry.__file__).resolve().parent
PYPROJECT = SRC.parent.parent / "pyproject.toml"


def _layer_of() -> dict[str, int]:
    """{module: layer index, 0 = lowest} from the layers contract in pyproject.toml."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    index = {}
    for level, layer in enumerate(reversed(contract["layers"])):
        for tail in layer.replace("|", ":").split(":"):
            index[tail.strip().strip("()")] = level
    return index


def test_the_registry_is_in_layer_order_and_every_app_has_a_layer():
    layer = _layer_of()
    assert set(URJA_APPS) <= set(layer), f"apps without a layer: {set(URJA_APPS) - set(layer)}"
    levels = [layer[app] for app in URJA_APPS]
    assert levels == sorted(levels), f"URJA_APPS is not lowest layer first: {list(zip(URJA_APPS, levels, strict=True))}"


def test_every_app_package_is_registered_and_every_registered_app_exists():
    packages = {p.parent.name for p in SRC.glob("*/apps.py")}
    assert packages == set(URJA_APPS)


def test_installed_apps_are_the_registry_in_order():
    ours = [app for app in settings.INSTALLED_APPS if app.startswith("urja.")]
    assert ours == installed_apps() == [f"urja.{app}" for app in URJA_APPS]


def test_pages_api_and_periodic_tasks_follow_the_registry():
    routed = {str(p.pattern) for p in urls.urlpatterns}
    with_urls = [app for app in URJA_APPS if has_module(app, "urls")]
    assert {"backoffice", "portal", "servicedesk", "billing"} <= set(with_urls)
    assert {f"{app}/" for app in with_urls} <= routed
    mounted = {prefix for prefix, _router in api._routers}
    assert {f"/{app}" for app, module in app_modules("api") if getattr(module, "router", None)} <= mounted
    schedule = collect()
    for _app, module in app_modules("tasks"):
        assert set(getattr(module, "PERIODIC_TASKS", {})) <= set(schedule)


def test_a_missing_module_is_skipped_but_a_broken_one_raises(monkeypatch, tmp_path):
    assert not has_module("core", "no_such_module")
    assert app_modules("no_such_module") == []
    # an app module whose own import fails must not be mistaken for "the app has none"
    (tmp_path / "registry_probe.py").write_text("import urja_no_such_dependency\n", encoding="utf-8")
    monkeypatch.setattr(urja.core, "__path__", [*urja.core.__path__, str(tmp_path)])
    monkeypatch.setattr(apps_registry, "URJA_APPS", ("core",))
    with pytest.raises(ModuleNotFoundError) as caught:
        app_modules("registry_probe")
    assert caught.value.name == "urja_no_such_dependency"
