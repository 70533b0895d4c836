"""The Hosts backend: subjobs on labelled Ray nodes, scheduled the Autotest way.

``scheduler`` (the pure rules: metahosts, only-if-needed labels, atomic groups,
synch count, host statuses), ``config.Hosts`` (what a user sets) and
``actor.HostsActor`` (the contract on a Ray cluster). Importing this package
imports neither Ray nor psutil.
"""
