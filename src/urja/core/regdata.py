"""Regulation as data: versioned TOML files under data/, each citing its source.

`load("customers/supply_types.toml")` returns the parsed document (cached). A malformed file
raises RegulationDataError naming the file and the problem.
"""

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings


class RegulationDataError(ValueError):
    pass


@lru_cache(maxsize=128)
def _load(path: str) -> dict[str, Any]:
    file = Path(path)
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RegulationDataError(f"{file}: regulation data file is missing") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegulationDataError(f"{file}: {exc}") from exc


def load(relative: str) -> dict[str, Any]:
    return _load(str(Path(settings.DATA_DIR) / relative))


def clear_cache() -> None:
    _load.cache_clear()
