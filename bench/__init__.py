"""Benchmarks: ``python -m bench [name ...]`` (figures, not pass/fail). See ``bench.__main__``."""
