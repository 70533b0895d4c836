"""Packing jobs.fs (issue 22, point 4): what a pack keeps, when the service packs by
itself, and what a SIGKILL or a full disk in the middle of a pack leaves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import transaction
import ZODB
from BTrees.IOBTree import IOBTree

from ganga_like.errors import ConfigurationError
from ganga_like.repository import pack
from ganga_like.repository.storage import SafeFileStorage
from tests.faults.test_full_disk import fill, fstest, small_filesystem

ROUNDS = 40  # commits that each rewrite every value: the file holds ROUNDS copies


def grow(path: Path, rounds: int = ROUNDS, values: int = 50, size: int = 2000) -> dict[int, bytes]:
    """A FileStorage at ``path`` whose values were rewritten ``rounds`` times; the last ones."""
    db = ZODB.DB(SafeFileStorage(str(path)))
    manager = transaction.TransactionManager()
    conn = db.open(manager)
    root = conn.root()
    root["t"] = IOBTree()
    manager.commit()
    for r in range(rounds):
        for i in range(values):
            root["t"][i] = bytes([r % 256]) * size
        manager.commit()
    last = dict(root["t"].items())
    db.close()
    return last


def read_values(path: Path) -> dict[int, bytes]:
    db = ZODB.DB(SafeFileStorage(str(path), read_only=True))
    try:
        return dict(db.open().root()["t"].items())
    finally:
        db.close()


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.endswith((".pack", ".old", ".tmp")))


def test_a_pack_keeps_the_current_state_and_leaves_no_scratch_file(tmp_path):
    path = tmp_path / "jobs.fs"
    last = grow(path)
    before, after = pack.pack_file(str(path))
    assert after < before / 10, (before, after)
    assert after == os.path.getsize(path)
    assert read_values(path) == last
    assert leftovers(path) == []  # no .old (not kept), no .pack, no .tmp
    assert fstest(path).returncode == 0
    assert pack.packed_size(str(path)) == after  # what the policy measures growth from


def test_closing_the_storage_removes_its_scratch_file(tmp_path):
    path = tmp_path / "jobs.fs"
    storage = SafeFileStorage(str(path))
    assert (tmp_path / "jobs.fs.tmp").exists()  # ZODB's, while open
    storage.close()
    assert leftovers(path) == []


def test_a_stale_scratch_file_of_a_killed_process_is_removed_at_the_next_start(tmp_path):
    path = tmp_path / "jobs.fs"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from ganga_like.repository.storage import SafeFileStorage
        SafeFileStorage({str(path)!r})
        print("open", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert leftovers(path) == ["jobs.fs.tmp"]
    assert pack.repair(str(path)) == [f"removed {path}.tmp, left by a process that was killed"]
    assert leftovers(path) == []


# A pack that stops midway through its copy, says so in ``marker`` and waits to be killed:
# ZODB's packer copies transaction after transaction into jobs.fs.pack
# (``FileStoragePacker.copyDataRecords``: 152 of them for ``grow(rounds=150)``).
HELD_PACK = """
import time
from ZODB.FileStorage import fspack
from ganga_like.repository.pack import pack_file
copy, copied = fspack.FileStoragePacker.copyDataRecords, [0]
def held(self, *args):
    copied[0] += 1
    if copied[0] == 50:  # some transactions are in jobs.fs.pack, the rest are not
        self._tfile.flush()
        open({marker!r}, "w").close()
        time.sleep(120)
    return copy(self, *args)
fspack.FileStoragePacker.copyDataRecords = held
pack_file({path!r})
"""


def test_a_pack_killed_midway_loses_nothing_and_the_next_start_is_clean(tmp_path):
    """SIGKILL while the pack writes jobs.fs.pack: the next start removes it; jobs.fs is whole.
    (The pack stops midway by itself: caught by polling, a fast pack on a busy machine
    was sometimes over before the test looked.)"""
    path = tmp_path / "jobs.fs"
    last = grow(path, rounds=150, values=100, size=4000)
    marker = tmp_path / "midway"
    packer = subprocess.Popen([sys.executable, "-c",
                               HELD_PACK.format(marker=str(marker), path=str(path))])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert packer.poll() is None, "the pack ended before it reached its midway"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert (tmp_path / "jobs.fs.pack").stat().st_size > 0
    finally:
        packer.send_signal(signal.SIGKILL)
        packer.wait()
    assert "jobs.fs.pack" in leftovers(path)
    done = pack.repair(str(path))
    assert any("jobs.fs.pack" in line for line in done), done
    assert leftovers(path) == []
    assert read_values(path) == last
    assert fstest(path).returncode == 0


def test_a_pack_killed_between_its_renames_is_undone_at_the_next_start(tmp_path):
    """The one moment with no jobs.fs: renamed to .old, .pack not yet renamed in."""
    path = tmp_path / "jobs.fs"
    last = grow(path)
    os.rename(path, str(path) + ".old")
    (tmp_path / "jobs.fs.pack").write_bytes(b"a packed copy, complete or not")
    done = pack.repair(str(path))
    assert done[0] == f"{path} restored from {path}.old (a pack was killed between its renames)"
    assert leftovers(path) == []
    assert read_values(path) == last


def test_a_pack_that_finds_the_disk_full_leaves_the_file_as_it_was(tmp_path):
    with small_filesystem(tmp_path / "small", 2) as small:
        path = small / "jobs.fs"
        last = grow(path, rounds=20, values=40, size=1000)
        filler = fill(small)
        whole = path.read_bytes()
        with pytest.raises(OSError):
            pack.pack_file(str(path))
        assert path.read_bytes() == whole
        assert leftovers(path) == []  # no .pack taking the room
        filler.unlink()
        before, after = pack.pack_file(str(path))
        assert after < before and read_values(path) == last


def test_the_policy_packs_when_the_file_has_grown_and_commits_pause():
    policy = pack.PackPolicy(factor=2, min_bytes=1000)
    assert not policy.due(size=900, last_packed=0, quiet_for=60)  # too small to bother
    assert policy.due(size=2000, last_packed=0, quiet_for=60)  # never packed
    assert not policy.due(size=2000, last_packed=0, quiet_for=0)  # (from min_bytes / factor)
    assert not policy.due(size=2000, last_packed=1500, quiet_for=60)  # not grown enough
    assert not policy.due(size=3000, last_packed=1500, quiet_for=1)  # commits go on
    assert policy.due(size=3000, last_packed=1500, quiet_for=pack.QUIET)
    assert policy.due(size=1500 * pack.HARD_FACTOR, last_packed=1500, quiet_for=0)  # never quiet
    assert not pack.PackPolicy(factor=0, min_bytes=1000).due(10**9, 1, 3600)  # 0: never by itself


@pytest.mark.parametrize(("name", "value", "said"), [
    ("GANGA_LIKE_PACK_FACTOR", "twice", "GANGA_LIKE_PACK_FACTOR='twice' is not valid; give 0 (never"),
    ("GANGA_LIKE_PACK_FACTOR", "1.01", "GANGA_LIKE_PACK_FACTOR='1.01' is not valid; give 0 (never"),
    ("GANGA_LIKE_PACK_KEEP_DAYS", "-1", "GANGA_LIKE_PACK_KEEP_DAYS='-1.0' is not valid; give days >= 0"),
    ("GANGA_LIKE_PACK_KEEP_DAYS", "nan", "GANGA_LIKE_PACK_KEEP_DAYS='nan' is not valid; give days >= 0"),
])
def test_a_bad_pack_setting_is_one_line_naming_what_it_takes(name, value, said):
    with pytest.raises(ConfigurationError) as caught:
        pack.PackPolicy.from_env({name: value})
    assert str(caught.value).startswith(said) and "\n" not in str(caught.value)
    assert pack.PackPolicy.from_env({}) == pack.PackPolicy()


def test_the_automatic_pack_runs_once_the_file_has_grown_and_commits_paused(tmp_path, monkeypatch):
    path = tmp_path / "jobs.fs"
    storage = SafeFileStorage(str(path), pack_keep_old=False)
    db = ZODB.DB(storage)
    manager = transaction.TransactionManager()
    conn = db.open(manager)
    conn.root()["t"] = IOBTree()
    manager.commit()
    auto = pack.AutoPack(storage, pack.PackPolicy(factor=2, min_bytes=50_000))
    clock = [1000.0]
    monkeypatch.setattr(pack.time, "monotonic", lambda: clock[0])  # the quiet period, not waited
    def rewrite(rounds: int) -> None:
        for r in range(rounds):
            for i in range(20):
                conn.root()["t"][i] = bytes([r]) * 1000
            manager.commit()

    try:
        assert auto.tick() is None  # small
        rewrite(30)
        clock[0] += pack.QUIET
        first = auto.tick()  # never packed, big enough, quiet
        assert first is not None and first.after < first.before / 5, first
        assert first.line().startswith(f"packed {path}: ") and " -> " in first.line()
        assert auto.tick() is None  # not again until it grows once more
        rewrite(4)  # grown 2 to 8 times
        assert auto.tick() is None  # commits go on
        clock[0] += pack.QUIET
        second = auto.tick()
        assert second is not None and second.before >= 2 * first.after, (first, second)
        assert dict(conn.root()["t"].items())[3] == bytes([3]) * 1000
    finally:
        db.close()
    assert leftovers(path) == []


def test_a_service_starting_after_a_pack_was_killed_between_its_renames_loses_nothing(tmp_path):
    """The whole start: a root whose service died in the instant with no jobs.fs (and left
    a .pack and a .tmp): the next service restores jobs.fs.old, removes the rest, says so
    in its log, and lists the job stored before."""
    from ganga_like.config import Config
    from ganga_like.engine.core import Engine
    from ganga_like.model.job import Job
    from tests.test_cli import run_gl

    root = tmp_path / "gl"
    session = Engine(Config.from_env(root=str(root)))
    try:
        session.register(Job(name="kept-through-the-pack"))
    finally:
        session.close()
    path = root / "repository" / "jobs.fs"
    os.rename(path, str(path) + ".old")
    (root / "repository" / "jobs.fs.pack").write_bytes(b"a pack cut short")
    (root / "repository" / "jobs.fs.tmp").write_bytes(b"")
    listed = run_gl(root, "jobs", "--json")  # starts the service; stopped and checked after
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["kept-through-the-pack"]
    log = (root / "service.log").read_text()
    assert f"{path} restored from {path}.old (a pack was killed between its renames)" in log, log
    assert f"removed {path}.pack, left by a process that was killed" in log, log
    assert leftovers(path) == []  # the stopped service's own .tmp went with it too
