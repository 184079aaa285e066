"""The benchmarks of the mediarecorder element: shared helpers, one module per report
section under `sections/`, and the renderer that turns the sections' JSON files into
BENCHMARKS.md. bench/bench.py is the entry point."""
