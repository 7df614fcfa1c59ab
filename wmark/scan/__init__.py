"""Forensic scanning of whole collections (``wmark scan``).

- :mod:`~wmark.scan.collection`: walk the paths, stream them through an engine, summarise.
- :mod:`~wmark.scan.job`: the per-file job, one report row a file, every model tried.
- :mod:`~wmark.scan.engines`: where the job runs (this process, a process pool, dask).
- :mod:`~wmark.scan.pool`: the process pool with a time limit per task.
- :mod:`~wmark.scan.report`: the append-only JSON-lines report, resume and CSV.
"""
