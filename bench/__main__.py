"""`python -m bench`: run the `main()` of every `bench/bench_*.py` module."""

from __future__ import annotations

import importlib
import pkgutil

import bench

for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
    if info.name.startswith("bench_"):
        importlib.import_module(f"bench.{info.name}").main()
