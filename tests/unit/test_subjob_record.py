"""A fresh subjob's compact record (model/subjob_record.py), on a real FileStorage.

A subjob written by ``split()`` reads back the same through every attribute a user
reads; a record written the old way (ZODB's dict state) still loads, reads the same
and takes a status change; the first change rewrites a compact record as a dict."""

from __future__ import annotations

import io
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganga_like.backends.local.config import Local
from ganga_like.config import Config
from ganga_like.engine.operations.submit import split
from ganga_like.model.component import FrozenDict, FrozenList
from ganga_like.model.files import File
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.splitters import ArgSplitter, GenericSplitter
from ganga_like.model.subjob_record import compact_state, expanded_state, is_compact, record_state
from ganga_like.repository import open_repository
from ganga_like.repository.storage import Connection, Repository


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repository = open_repository(Config(root=str(tmp_path_factory.mktemp("records") / "gl")))
    yield repository
    repository.close()


def _stored_master(repo: Repository, job: Job) -> tuple[Connection, Job]:
    conn = repo.connect()

    def work() -> None:
        conn.jobs.add(job)
        split(job)

    conn.write(work)
    return conn, job


def _loaded(repo: Repository, job: Job) -> tuple[Connection, Job]:
    """The same job read by another connection, from the database (nothing cached)."""
    reader = repo.connect()
    reader.refresh()
    return reader, reader.jobs.get(job.id)


def _stored_state(repo: Repository, obj: object) -> object:
    """The state in ``obj``'s record as the database holds it (references left as refs)."""
    data = repo.db.storage.load(obj._p_oid)[0]
    unpickler = pickle.Unpickler(io.BytesIO(data))
    unpickler.persistent_load = lambda ref: ref
    unpickler.load()  # the class
    return unpickler.load()


def _read(sub: Job) -> dict[str, object]:
    """Every field of a subjob as a user reads it."""
    return {"compared": sub._compared(), "fqid": sub.fqid, "id": sub.id, "created": sub.created,
            "new": sub.time.new(), "status": sub.status.value, "master": sub.master.id,
            "application": sub.application.field_values(), "backend": sub.backend.field_values(),
            "inputdata": sub.inputdata, "splitter": sub.splitter, "history": sub.history,
            "reason": sub.reason, "exit_code": sub.exit_code, "workdir": sub.workdir,
            "submit_counter": sub.submit_counter, "handle": sub.handle, "is_master": sub.is_master}


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                max_size=6)
_args = st.lists(st.one_of(_text, st.integers(-5, 5)), max_size=3)
_env = st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True), _text, max_size=2)
_exe = st.from_regex(r"/bin/[a-z]{1,6}", fullmatch=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_args, _env, _exe), min_size=1, max_size=4),
       which=st.sampled_from(["args", "args+env", "all"]))
def test_every_field_of_a_split_subjob_reads_back_the_same(repo, rows, which):
    paths = {"args": ["application.args"], "args+env": ["application.args", "application.env"],
             "all": ["application.args", "application.env", "application.exe"]}[which]
    columns = dict(zip(["application.args", "application.env", "application.exe"],
                       zip(*rows, strict=True), strict=True))
    splitter = GenericSplitter(multi_attrs={p: list(columns[p]) for p in paths})
    job = Job(name="rt", backend=Local(), splitter=splitter)
    conn, job = _stored_master(repo, job)
    reader, loaded = _loaded(repo, job)
    try:
        for sub in job._subjobs.values():
            assert is_compact(_stored_state(repo, sub))
            again = loaded.subjobs[sub.id]
            assert _read(again) == _read(sub)
            for path in paths:  # the types the field's check gave, not only equal values
                leaf = path.partition(".")[2]
                assert type(again._overrides[path]) is type(sub._overrides[path])
                assert type(getattr(again.application, leaf)) is type(getattr(sub.application, leaf))
    finally:
        reader.close()
        conn.close()


def _write_the_old_way(conn: Connection, sub: Job) -> None:
    """Rewrite ``sub``'s record as the code before the compact form wrote it: ZODB's
    dict state, through ZODB's own commit. A volatile attribute (``_v_``: never stored)
    puts more in its ``__dict__`` than the compact form holds, so ``__getstate__``
    gives persistent's dict of the stored attributes, as before."""

    def work() -> None:
        sub._v_written_the_old_way = True
        sub._p_changed = True

    conn.write(work)


def test_a_subjob_record_written_the_old_way_loads_reads_the_same_and_changes(repo):
    job = Job(name="old", backend=Local(concurrency=3), splitter=ArgSplitter(args=[["a", "1"], ["b"], []]))
    conn, job = _stored_master(repo, job)
    old = job._subjobs[1]
    _write_the_old_way(conn, old)
    reader, loaded = _loaded(repo, job)
    try:
        assert type(_stored_state(repo, old)) is dict
        assert is_compact(_stored_state(repo, job._subjobs[0]))
        for sub in job._subjobs.values():
            assert _read(loaded.subjobs[sub.id]) == _read(sub)
        assert loaded.subjobs[1].application.args == ["b"]
        # It behaves: a status change is stored (packed, as every changed subjob).
        reader.write(lambda: set_status(loaded.subjobs[1], "submitting", "test"))
        reader.write(lambda: set_status(loaded.subjobs[0], "submitting", "test"))
        for sub_id in (0, 1):
            assert _is_packed(_stored_state(repo, loaded.subjobs[sub_id]))
        third, again = _loaded(repo, job)
        assert [sub.status.value for sub in again.subjobs] == ["submitting", "submitting", "new"]
        assert again.subjobs[1].application.args == ["b"]
        assert again.subjobs[0].application.args == ["a", "1"]
        third.close()
    finally:
        reader.close()
        conn.close()


_values = st.recursive(
    st.one_of(st.none(), st.integers(), _text, st.booleans()),
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(FrozenList),
                            st.dictionaries(_text, inner, max_size=2).map(FrozenDict)),
    max_leaves=5)


@given(ident=st.integers(0, 10**6), created=st.one_of(st.none(), st.floats(0, 2e9)),
       overrides=st.dictionaries(st.sampled_from(["application.args", "application.env",
                                                  "backend.cpus", "backend.label"]), _values))
def test_the_compact_form_is_the_inverse_of_its_expansion(ident, created, overrides):
    master = object()
    state = {"master": master, "id": ident, "_overrides": overrides}
    if created is not None:
        state["created"] = created
    compact = compact_state(state)
    assert compact is not None and is_compact(compact)
    back = expanded_state(compact)
    assert back == state
    assert {k: type(v) for k, v in back["_overrides"].items()} == \
        {k: type(v) for k, v in overrides.items()}


def test_what_the_compact_form_cannot_hold_stays_a_dict():
    master = object()
    fresh = {"master": master, "id": 1, "created": 1.5, "_overrides": {"application.args": FrozenList(["x"])}}
    assert compact_state(fresh) is not None
    # a plain tuple would read back as a FrozenList
    assert compact_state({**fresh, "_overrides": {"application.args": ("x",)}}) is None
    # a subjob that has moved (a status, a history) holds more than the form does
    assert compact_state({**fresh, "_status": "submitting"}) is None
    assert compact_state({"id": 1, "created": 1.5}) is None  # not a subjob
    assert not is_compact(({"id": 1}, None))  # ZODB's own (dict, slots) form


def _is_packed(state: object) -> bool:
    return is_compact(state) and len(state) == 4 and type(state[3]) is bytes  # type: ignore[arg-type]


_history = st.lists(st.tuples(st.floats(0, 2e9), _text, _text, _text, _text,
                              st.one_of(st.none(), st.tuples(_text, _text, st.none(), _text))),
                    max_size=4).map(tuple)


@given(ident=st.integers(0, 10**6), created=st.one_of(st.none(), st.floats(0, 2e9)),
       overrides=st.dictionaries(st.sampled_from(["application.args", "backend.cpus"]),
                                 st.one_of(_text, st.integers(),
                                           st.lists(_text, max_size=3).map(FrozenList))),
       status=st.sampled_from(["submitting", "running", "completed"]), history=_history,
       handle=st.one_of(st.none(), st.tuples(_text, _text, st.integers(), st.floats(0, 2e9))),
       exit_code=st.one_of(st.none(), st.integers(-9, 255)), note=_text)
def test_the_packed_form_is_the_inverse_of_its_expansion(ident, created, overrides, status,
                                                           history, handle, exit_code, note):
    master = object()
    state = {"master": master, "id": ident, "_overrides": overrides, "_status": status,
             "history": history, "handle": handle, "exit_code": exit_code,
             "backend_note": note, "submit_counter": 1}
    if created is not None:
        state["created"] = created
    packed = record_state(state)
    assert packed is not None and _is_packed(packed) and packed[0] is master
    back = expanded_state(packed)
    assert back == state
    assert {k: type(v) for k, v in back["_overrides"].items()} == \
        {k: type(v) for k, v in overrides.items()}


def test_what_the_packed_form_cannot_hold_stays_a_dict():
    moved = {"master": object(), "id": 1, "created": 1.5, "_status": "running",
             "_overrides": {"application.args": FrozenList(["x"])}, "history": ()}
    assert _is_packed(record_state(moved))
    # an override that is not plain data (a component: a record of its own) or nests deeper
    assert record_state({**moved, "_overrides": {"application.exe": File("x")}}) is None
    assert record_state({**moved, "_overrides": {"application.args": FrozenList([FrozenList([])])}}) is None
    # a key not known to hold plain values (a volatile attribute, a future field)
    assert record_state({**moved, "_v_cache": object()}) is None
    assert record_state({**moved, "inputfiles": ()}) is None
    assert record_state({"id": 1, "_status": "running"}) is None  # not a subjob


def test_a_subjob_that_ran_reads_back_the_same_from_its_packed_record(repo):
    job = Job(name="ran", backend=Local(), splitter=ArgSplitter(args=[["a", "1"], ["b"]]))
    conn, job = _stored_master(repo, job)

    def run(sub: Job) -> None:
        for status in ("submitting", "submitted", "running", "completing", "completed"):
            set_status(sub, status, f"to {status}")
        sub.handle = ("Local", sub.fqid, "host", 42, 1.5, "", "/w", "", 1, 1, 0, ())
        sub.exit_code = 0
        sub.backend_detail = "Done"

    conn.write(lambda: run(job._subjobs[0]))
    reader, loaded = _loaded(repo, job)
    try:
        assert _is_packed(_stored_state(repo, job._subjobs[0]))
        assert is_compact(_stored_state(repo, job._subjobs[1])) and not _is_packed(
            _stored_state(repo, job._subjobs[1]))
        for sub in job._subjobs.values():
            assert _read(loaded.subjobs[sub.id]) == _read(sub)
        assert loaded.subjobs[0].backend_detail == "Done" and loaded.subjobs[0].status == "completed"
        assert loaded.status == "new"  # its master, derived from both (one new, one done)
    finally:
        reader.close()
        conn.close()


def test_a_pack_keeps_compact_and_packed_records_and_what_they_reference(repo):
    # A pack keeps what the root reaches, following the references it reads in each
    # record's pickle: the compact and packed tuples' master and the tree's subjobs
    # among them (a packed record's inner pickle holds no reference).
    job = Job(name="packed", backend=Local(), splitter=ArgSplitter(args=[["1"], ["2"], ["3"]]))
    conn, job = _stored_master(repo, job)
    conn.write(lambda: set_status(job._subjobs[0], "submitting", "moved"))
    before = [_read(sub) for sub in job._subjobs.values()]
    conn.close()
    repo.db.pack()
    reader, loaded = _loaded(repo, job)
    try:
        assert [_read(sub) for sub in loaded.subjobs] == before
        assert is_compact(_stored_state(repo, loaded.subjobs[2]))
        assert _is_packed(_stored_state(repo, loaded.subjobs[0]))
        assert loaded.subjobs[0].master is loaded
    finally:
        reader.close()
