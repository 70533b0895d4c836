"""The names in a subjob's directory, ``<workspace>/<master>/<subjob>/``, as the
wrappers make them (ARCHITECTURE.md's layout; docs/architecture.md, "On disk")."""

STATUS = "status"  # its own status file (``status_file.py``)
OUTPUT = "output"  # the payload's working directory
EMPTY_OUTPUTS = ("stdout", "stderr")  # what the wrapper always makes in it, written to or not
COLLECTED = "subjobs.status"  # in the master's directory: the tidied subjobs' status lines
