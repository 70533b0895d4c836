"""The Local backend: subjobs as processes on this machine, run by a Ray actor.

``actor.LocalActor`` (and ``actor.start_local_actor`` to create it as a named Ray
actor), ``procs`` (process identity, whole-tree kills) and ``wrapper.sh`` (the
per-subjob bash wrapper). Importing this package imports neither Ray nor psutil.
"""
