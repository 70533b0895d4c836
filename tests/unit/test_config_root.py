"""Where the repository is: GANGA_LIKE_DIR, and what an empty value means."""

from __future__ import annotations

import os

import pytest

from ganga_like.config import Config


@pytest.mark.parametrize("value", ["", "   "])
def test_a_set_but_empty_GANGA_LIKE_DIR_means_the_default_never_the_current_directory(value, tmp_path):
    root = Config.from_env({"GANGA_LIKE_DIR": value, "HOME": os.environ["HOME"]}).root
    assert root == os.path.expanduser("~/gangalike")
    assert root != os.getcwd()


def test_GANGA_LIKE_DIR_names_the_root():
    assert Config.from_env({"GANGA_LIKE_DIR": "/data/me/gl"}).root == "/data/me/gl"
