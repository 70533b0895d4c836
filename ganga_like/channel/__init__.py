"""What the service and its clients share: where the service's files are, and the wire.

Both ``ganga_like.service`` (the manager) and ``ganga_like.client`` (every face)
import from here; neither imports the other.
"""
