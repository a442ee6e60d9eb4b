"""Benchmarks of DESIGN "Performance targets": `make bench` (see bench/run.py)."""
