"""BEX queues for Hosts jobs (the seed's batch executor): on-disk queues a person can read.

Under ``<root>/queue/``: ``jobs/<job-id>.job`` (mail-like job files), per host
``hosts/<host>/`` with a link to the job file, a ``.stat`` (``Time:``, ``Status:``,
``Message:``) and a ``.log`` (the transcript of every attempt), ``history/<host>/``
for finished jobs when history is kept, and ``log``: one line per BEX status.

``codes`` (the BEX codes and the one table from our statuses to them), ``jobfile``
(the job-file format: pure), ``entry`` (a stored subjob seen as a queue entry) and
``files`` (the directory and its files) are used by the service, which alone writes
the queue (``engine/bex_writer.py``), and ``submit`` builds a job from a job file.
"""
