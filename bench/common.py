"""Helpers for benchmarks: a fixed organisation and bulk accounts to work on."""

import time
from contextlib import contextmanager


@contextmanager
def timer(result: dict):
    start = time.perf_counter()
    yield
    result["seconds"] = time.perf_counter() - start
