"""Benchmarks: Cedros Pay endpoints against a bare Starlette baseline (`make bench`)."""
