"""Benchmarks and the seeded corpus generator (see docs/performance.md)."""
