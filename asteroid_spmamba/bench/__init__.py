"""Benchmark functions (their command line:
``python -m asteroid_spmamba.commands.bench_streaming``)."""
