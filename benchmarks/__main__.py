"""Run the benchmarks: ``python -m benchmarks [name ...] [--quick]``.

Every module ``benchmarks/bench_*.py`` has a ``main()``; they run in turn, or only those
named on the command line (``engine`` or ``bench_engine``). Flags (words starting with
``-``) are passed to each ``main(argv)`` that takes an argument; ``--quick`` also sets
``ZB_BENCH_QUICK=1`` in the environment for benchmarks that read it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import time
from pathlib import Path


def _modules() -> list[str]:
    folder = Path(__file__).resolve().parent
    return sorted(p.stem for p in folder.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; return the number that failed."""
    args = sys.argv[1:] if argv is None else argv
    flags = [a for a in args if a.startswith("-")]
    names = [a if a.startswith("bench_") else f"bench_{a}" for a in args
             if not a.startswith("-")]
    available = _modules()
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    if "--quick" in flags:
        os.environ["ZB_BENCH_QUICK"] = "1"
    failed = 0
    for name in names or available:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"=== {name} ===", flush=True)
        start = time.perf_counter()
        takes_args = len(inspect.signature(module.main).parameters) > 0
        result = module.main(flags) if takes_args else module.main()
        if isinstance(result, int) and result != 0:
            failed += 1
        print(f"=== {name}: {time.perf_counter() - start:.1f} s ===\n", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
