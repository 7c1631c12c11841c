"""Benchmark scripts (run as modules, e.g. ``python -m asteroid_spmamba.bench.streaming``)."""
