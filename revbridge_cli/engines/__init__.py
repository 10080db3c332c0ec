"""Engines: one import spread over Spark or Dask tasks, partitioned by user."""
