"""Benchmarks and evaluations run on the real data in ../shared (python -m bench, python -m bench.tracking)."""
