"""Benchmarks: they measure side by side in one run and print figures; they assert nothing."""

__all__: list[str] = []
