"""The web view: a live job page in the browser, served by the service (issue 23).

Runs inside the service's process (``service/webhost.py`` starts it on the first
``ganga-like web``), on loopback behind a per-start token (``auth``); reads the
database on connections of its own (``reads``, ``live``) and acts through the service's
verb table, as every client does (``base.act``). Pages are plain HTML and CSS with a
small script of our own (``static/``); ``/api/...`` answers in ``--json``'s shapes.
"""
