"""A service's own files (service/owned.py): held from when they are made, so a file
made later under the same name, after a delete, is never taken for one of them, even
where the filesystem gives it the same inode number (ext4 does, for a directory
deleted and made again at once)."""

from __future__ import annotations

import os
import shutil
import socket

from ganga_like.service import owned


def test_a_root_deleted_and_made_again_under_its_name_is_not_the_one_held(tmp_path):
    root = tmp_path / "gl"
    root.mkdir()
    (root / "service.json").write_text("{}")
    held = owned.Held(str(root))
    assert held.is_there()
    shutil.rmtree(root)
    assert not held.is_there()
    root.mkdir()
    assert not held.is_there()
    held.release()
    assert not held.is_there()


def test_remove_takes_the_file_it_made_and_leaves_the_next_ones(tmp_path):
    path = tmp_path / "service.json"
    path.write_text("ours")
    ours = owned.Held(str(path))
    ours.remove()
    assert not path.exists()

    path.write_text("ours")
    old = owned.Held(str(path))
    path.unlink()
    path.write_text("the next service's")  # made while the old one still runs
    old.remove()
    assert path.read_text() == "the next service's"


def test_a_socket_is_held_and_removed_as_a_file_is(tmp_path):
    path = str(tmp_path / "zeo.sock")
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(path)
        held = owned.Held(path)
        assert held.is_there()
        held.remove()
        assert not os.path.exists(path)
    finally:
        listener.close()


def test_a_path_gone_before_it_is_held_is_never_its_own(tmp_path):
    held = owned.Held(str(tmp_path / "never-made"))
    assert not held.is_there()
    (tmp_path / "never-made").write_text("someone else's")
    held.remove()
    assert (tmp_path / "never-made").exists()
