"""Benchmarks: tiled pipeline, compression and co-registration (`make bench*`)."""
