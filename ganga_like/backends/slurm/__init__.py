"""The Slurm backend: a master's subjobs as one Slurm job array, each subjob one task.

``config.Slurm`` is what a user sets as ``j.backend``; ``actor.SlurmActor`` (a named
Ray actor made by ``actor.start_slurm_actor``) submits arrays with ``sbatch``, asks
Slurm once per round how every task is (``commands``), maps Slurm's states through
one table (``states``) and kills with ``scancel``. ``script`` writes the batch script.
Importing this package imports neither Ray nor psutil.
"""
