"""Cause numbers (issue 17, point 5): short, unique within a repository, from 1, handed
out from blocks reserved in the repository (``repository.causes``), on a real FileStorage."""

from __future__ import annotations

import subprocess
import threading

from ganga_like.repository import open_repository
from ganga_like.repository.causes import BLOCK, CauseNumbers
from tests.integration.conftest import PYTHON, _child_env


def test_numbers_start_at_one_and_go_on_after_a_clean_restart(config):
    repo = open_repository(config)
    assert [repo.causes.take() for _ in range(3)] == [1, 2, 3]
    repo.close()  # gives back 4..BLOCK: the next process goes on from 4
    repo = open_repository(config)
    try:
        assert repo.causes.take() == 4
    finally:
        repo.close()


CRASH = """
import os
from ganga_like.config import Config
from ganga_like.repository import open_repository
repo = open_repository(Config(root=os.environ["GL_ROOT"]))
print(repo.causes.take(), repo.causes.take(), flush=True)
os._exit(9)  # no close: the block is not given back
"""


def test_a_crash_leaves_a_gap_never_a_repeat(config):
    child = subprocess.run([PYTHON, "-c", CRASH], capture_output=True, text=True, timeout=60,
                           env=_child_env({"GL_ROOT": config.root}))
    assert child.returncode == 9, child.stderr
    assert child.stdout.split() == ["1", "2"]
    repo = open_repository(config)
    try:
        assert repo.causes.take() == BLOCK + 1  # after the crashed process's whole block
    finally:
        repo.close()


def test_threads_and_two_allocators_never_share_a_number(repository):
    # Two allocators on one database stand for two processes writing one repository.
    first, second = repository.causes, CauseNumbers(repository.db)
    taken: list[int] = []
    lock = threading.Lock()

    def take(numbers: CauseNumbers) -> None:
        mine = [numbers.take() for _ in range(3 * BLOCK)]
        with lock:
            taken.extend(mine)

    threads = [threading.Thread(target=take, args=(n,)) for n in (first, second, first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == len(set(taken)) == 12 * BLOCK
    assert min(taken) == 1


def test_giving_back_only_when_nobody_reserved_after(repository, config):
    early, late = repository.causes, CauseNumbers(repository.db)
    assert early.take() == 1
    assert late.take() == BLOCK + 1
    early.give_back()  # a block was reserved after its own: nothing to give back
    late.give_back()   # the last block: its unused end goes back
    assert CauseNumbers(repository.db).take() == BLOCK + 2
