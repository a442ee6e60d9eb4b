"""`make bench`: run the benchmarks of DESIGN "Performance targets" on the harness's PostgreSQL and Redis,
print a table per benchmark and write var/bench/results.json (one object per benchmark ID).

    .venv/bin/python -m tests.integration.services .venv/bin/python -m bench.run     # what `make bench` runs
    BENCH_SCALE=full make bench                                                     # the targets' scale

Exit status: 1 when a hard gate fails (B4: a charge lost or charged twice), else 0. Ratios that miss
their target are reported, not turned into a failure.
"""

from __future__ import annotations

import sys

from .common import log, scale, setup_django, write_results


def main() -> int:
    chosen = scale()
    setup_django()
    from . import b4

    result = b4.main(chosen)
    path = write_results("B4", result)
    log(f"results written to {path}")
    if not result["gate_passed"]:
        log(f"B4 hard gate FAILED: lost {result['lost']}, duplicates {result['duplicates']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
