"""`make bench`: run the benchmarks of DESIGN "Performance targets" on the harness's PostgreSQL and Redis,
print a table per benchmark and write var/bench/results.json (one object per benchmark ID).

    .venv/bin/python -m tests.integration.services .venv/bin/python -m bench.run     # what `make bench` runs
    BENCH_SCALE=full make bench                                                     # the targets' scale
    BENCH_ONLY=B4,B5 make bench                                                     # some of them

Each benchmark is a module ``bench/b<N>.py`` with ``main(scale) -> dict``; the dict is written as the
benchmark's object. A result with ``"gate_passed": False`` is a hard gate that failed (B4: a charge lost or
charged twice; B3: a duplicate after the second run): the exit status is then 1. Ratios that miss their
target are reported, not turned into a failure.
"""

from __future__ import annotations

import importlib
import os
import sys

from .common import log, scale, setup_django, write_results

BENCHMARKS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7")


def chosen_benchmarks() -> list[str]:
    only = [part.strip().upper() for part in os.environ.get("BENCH_ONLY", "").split(",") if part.strip()]
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"BENCH_ONLY: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    return [name for name in BENCHMARKS if not only or name in only]


def main() -> int:
    chosen = scale()
    names = chosen_benchmarks()
    setup_django()
    failed = []
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name.lower()}")
        except ModuleNotFoundError as error:
            if error.name != f"bench.{name.lower()}":
                raise
            log(f"{name}: not written yet (bench/{name.lower()}.py)")
            continue
        log(f"{name}: starting at scale {chosen}")
        result = module.main(chosen)
        path = write_results(name, result)
        log(f"{name}: results written to {path}")
        if result.get("gate_passed") is False:
            failed.append(name)
    if failed:
        log(f"hard gate FAILED: {', '.join(failed)} (see their tables above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
