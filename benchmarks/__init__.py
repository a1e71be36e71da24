"""ws-sync benchmark suite: `python -m benchmarks`."""
