"""ganga_like: a job manager for people who run thousands of jobs.

Importing this package has no side effects: no database is opened and no Ray
cluster is started. The GPI (``ganga_like.gpi``) starts a session on first use.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
