"""Batch processing of many scenes on Dask (``python -m engine.batch``).

Only :mod:`engine.batch.runner` imports Dask; the plugin and the engine core never need it.
"""
