"""Fixtures for the service's tests."""

from __future__ import annotations

import pytest

from tests.test_cli import finish_root


@pytest.fixture
def root(tmp_path, request):
    """A root of the test's own; its service is stopped afterwards and nothing of it
    may be left (``finish_root``). A module with a shared root defines its own ``root``."""
    root = tmp_path / "gl"
    yield root
    finish_root(root, what=f"{request.node.name}'s service")
