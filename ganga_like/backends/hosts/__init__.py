"""The Hosts backend: subjobs on labelled Ray nodes, scheduled the Autotest way.

``scheduler`` (the pure rules: metahosts, only-if-needed labels, atomic groups,
synch count, job-id order) with ``why`` (its counted wait notes), ``host_states``
(the host-status table and protections) and ``hostbook`` (the actor's record of its
hosts), ``config.Hosts`` (what a user sets), ``checks`` (verify, cleanup, repair as
they run on a host) and ``actor.HostsActor`` with ``care`` (the contract on a Ray
cluster). Importing this package imports neither Ray nor psutil.
"""
