"""What every face uses: a connection to the repository's service.

``ClientSession`` reads and edits jobs through its own ZEO connection (no Ray
is imported) and asks the service for every verb that touches running work;
``default_session()`` is the one the GPI and the command line share, started
(with the service, if none runs) on first use.
"""
