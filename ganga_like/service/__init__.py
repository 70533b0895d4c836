"""The service: one long-lived manager per repository root.

It holds the FileStorage and serves it through ZEO on a unix socket in the
root (and, with ``--listen``, over TLS to clients that hold the root's secret);
it runs Ray with the backend actors, the monitor, postprocessing and crash
recovery, and carries out every verb a client asks for on its control socket.
Clients (``ganga_like.client``) start it on first use; it stops itself after
``GANGA_LIKE_IDLE`` seconds with no client and no active job.
"""
