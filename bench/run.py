"""Benchmark harness: `make bench` runs every bench, `make bench B=name` one of them.

Each bench is a module bench/<name>.py with NAME, DEFAULT_N and run(n) -> dict (at least
"n" and "seconds"; extra figures welcome). It runs in its own process against PostgreSQL
(URJA_BENCH_DATABASE_URL, default the local server's urja_bench database, migrated first) and
prints one JSON line: {"bench", "n", "seconds", "per_s", "peak_rss_mb", ...}.
"""

import importlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/urja_bench"


def bench_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in {"run", "common", "__init__"})


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def run_one(name: str, n: int | None) -> dict:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "urja.settings")
    import django

    django.setup()
    module = importlib.import_module(name)
    result = module.run(n or module.DEFAULT_N)
    result.setdefault("bench", module.NAME)
    result["per_s"] = round(result["n"] / result["seconds"], 1) if result["seconds"] else None
    result["seconds"] = round(result["seconds"], 3)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    ordered = {k: result.pop(k) for k in ["bench", "n", "seconds", "per_s", "peak_rss_mb"]}
    return {**ordered, **result}


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        print(json.dumps(run_one(argv[1], int(argv[2]) if len(argv) > 2 and argv[2] else None)), flush=True)
        return 0
    url = os.environ.get("URJA_BENCH_DATABASE_URL", DEFAULT_URL)
    env = {**os.environ, "DATABASE_URL": url, "URJA_ENV": "development", "DEBUG": "0", "LOG_LEVEL": "WARNING"}
    ensure_database(url)
    subprocess.run([sys.executable, "-m", "urja.manage", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
    names = argv or bench_names()
    n = os.environ.get("N", "")
    rc = 0
    for name in names:
        if name not in bench_names():
            print(f"unknown bench {name!r}; have: {', '.join(bench_names())}", file=sys.stderr)
            return 2
        # One process per bench, so peak RSS is that bench's own.
        proc = subprocess.run([sys.executable, str(HERE / "run.py"), "--child", name, n], env=env, cwd=ROOT)
        rc = rc or proc.returncode
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
