"""The RayCluster backend: each subjob is one Ray task, anywhere in a Ray cluster.

``config.RayCluster`` is what a user sets as ``j.backend``; ``actor.RayClusterActor``
(created as a named Ray actor by ``actor.start_raycluster_actor``) does the work.
Importing this package imports neither Ray nor psutil.
"""
