"""Benchmarks of claimkb on synthetic knowledge bases: `python -m bench --help`."""
