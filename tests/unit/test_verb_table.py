"""The verb table (pure): each verb is declared once, in ``model.session.JobSession``
(the service's own in ``channel.verbs``), and the facade, the wire, the client's one
generic call and the service's dispatch all derive from that declaration.

The same verbs run through a real engine and a real client in
``tests/service/test_verb_table.py``.
"""

from __future__ import annotations

import ast
import inspect
import threading
import time
from pathlib import Path

import pytest

from ganga_like.channel import verbs as wire
from ganga_like.engine.core import Engine, operation_of
from ganga_like.errors import GangaLikeError, ServiceStopping
from ganga_like.model.session import JOB_VERBS, JobSession, Lock, Result
from ganga_like.service.verbs import Verbs, dispatch
from ganga_like.status import Status

PACKAGE = Path(__file__).resolve().parents[2] / "ganga_like"
EXPECTED = {"submit", "submit_bex", "kill", "resubmit", "remove", "force_status", "freeze", "unfreeze",
            "unmonitor", "leaks", "hosts", "peek", "wait", "hello", "status", "web", "pack", "stop"}
NOT_VERBS = {"register", "write", "refresh_for_read", "run_verb"}  # what the model needs besides


class FakeJob:
    def __init__(self, fqid: str, status: Status = Status.RUNNING) -> None:
        self.fqid = fqid
        self.status = status
        self.id = int(fqid.split(".")[0])


def sample_args(verb) -> dict:
    """Arguments a session's caller could give ``verb`` (non-defaults where it matters)."""
    values = {"job": FakeJob("3"), "jobs": [FakeJob("3"), FakeJob("4.1")], "keep_going": True,
              "environment": {"A": "1"}, "force": True, "include_killed": True,
              "status": Status.FAILED, "reap": True, "file": "stderr", "lines": 5,
              "timeout": 2.5, "poll": 0.1, "only_failed": False,
              "text": "ID: a\n\ntrue\n", "hosts": ["n1", "n2"], "source": "a.job",
              "listen": "127.0.0.1:0", "name": "n1"}
    return {p.name: values[p.name] for p in verb.params}


def test_the_table_holds_every_verb_once():
    assert set(wire.VERBS) == EXPECTED
    declared = {name for name, value in vars(JobSession).items()
                if inspect.isfunction(value) and not name.startswith("_")}
    assert declared - NOT_VERBS == set(JOB_VERBS)
    assert all(v.lock is Lock.NONE for v in wire.SERVICE_VERBS)
    assert {v.name for v in JOB_VERBS.values() if v.lock is Lock.READ} == {"peek", "wait", "hosts"}
    assert {v.name for v in JOB_VERBS.values() if v.monitor} == {
        "submit", "submit_bex", "kill", "resubmit", "remove", "force_status"}
    # The declaration is what a reader sees: signature, defaults and types.
    resubmit = JOB_VERBS["resubmit"]
    assert [(p.name, p.annotation, p.default) for p in resubmit.params] == [
        ("job", "J", inspect.Parameter.empty), ("force", "bool", False),
        ("include_killed", "bool", False), ("only_failed", "bool | None", None)]
    assert JOB_VERBS["unfreeze"].operation == "engine.operations.forcing:unfreeze"


class Recorder(JobSession):
    """A session whose one generic call records what each declared verb hands it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def run_verb(self, name, /, **args):
        self.calls.append((name, args))
        return "result"


@pytest.mark.parametrize("name", sorted(JOB_VERBS))
def test_each_declared_verb_hands_its_own_name_and_every_argument_to_the_generic_call(name):
    verb = JOB_VERBS[name]
    args = sample_args(verb)
    session = Recorder()
    assert getattr(session, name)(**args) == "result"
    assert session.calls == [(name, args)]
    # Defaults too: called with the required arguments only, the declared defaults go on.
    session.calls.clear()
    required = {p.name: args[p.name] for p in verb.params if p.default is inspect.Parameter.empty}
    getattr(session, name)(**required)
    assert session.calls == [(name, {**{p.name: p.default for p in verb.params}, **required})]


def test_both_sessions_inherit_the_verbs_and_the_engine_runs_each_by_its_operation():
    assert issubclass(Engine, JobSession)
    for name in JOB_VERBS:
        if name != "wait":  # the facade's own operation, with its in-process options
            assert getattr(Engine, name) is getattr(JobSession, name), name
    client_source = (PACKAGE / "client" / "session.py").read_text()
    assert "JobSession[Job]" in client_source  # (importing the client here would need Ray's marks)
    assert not any(f"def {name}(" in client_source for name in JOB_VERBS)


@pytest.mark.parametrize("name", sorted(JOB_VERBS))
def test_every_operation_exists_and_takes_the_verbs_arguments(name):
    verb = JOB_VERBS[name]
    params = list(inspect.signature(operation_of(verb)).parameters.values())
    first, rest = params[0], params[1:]
    assert first.name == ("self" if verb.operation.startswith("engine.core:Engine.") else "ctx")
    taken = {p.name: p.default for p in rest}
    for param in verb.params:
        assert param.name in taken, f"{verb.operation} does not take {param.name}"
        assert taken[param.name] in (param.default, None), (name, param.name)
    extra = [p.name for p in rest if p.name not in {q.name for q in verb.params}]
    assert all(p.default is not inspect.Parameter.empty for p in rest if p.name in extra)


def test_the_service_verbs_are_the_dispatchers_own_methods():
    for verb in wire.SERVICE_VERBS:
        module, _, qualname = verb.operation.partition(":")
        assert module == "service.verbs" and qualname == f"Verbs.{verb.name}"
        # The method takes the verb's declared arguments, with the same defaults.
        params = list(inspect.signature(getattr(Verbs, verb.name)).parameters.values())[1:]
        assert [(p.name, p.default) for p in params] == [(p.name, p.default) for p in verb.params]


def test_the_clients_requests_outside_a_session_name_verbs_of_the_table():
    named = set()
    for path in (PACKAGE / "client").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "call" \
                    and node.args and isinstance(node.args[0], ast.Constant):
                named.add(node.args[0].value)
    assert named and named <= set(wire.VERBS), named


# -- the wire -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(JOB_VERBS))
def test_a_verb_goes_over_the_wire_and_back_to_the_same_arguments(name):
    verb = JOB_VERBS[name]
    args = sample_args(verb)
    sent = wire.request_args(verb, args)
    assert "poll" not in sent  # local: stays with the caller
    if "job" in args:
        assert sent["fqid"] == "3"
    if "jobs" in args:
        assert sent["fqids"] == ["3", "4.1"]
    if "status" in args:
        assert sent["status"] == "failed" and type(sent["status"]) is str
    known = [args["job"]] if "job" in args else list(args.get("jobs", ()))
    received = wire.call_args(verb, sent, {job.fqid: job for job in known}.__getitem__)
    expected = {k: v for k, v in args.items() if k not in verb.local}
    if "status" in expected:
        expected["status"] = "failed"
    assert received == expected


def test_an_argument_left_to_the_caller_is_filled_in_by_the_caller(monkeypatch):
    monkeypatch.setenv("GL_TABLE_TEST", "here")
    sent = wire.request_args(JOB_VERBS["submit"], {"job": FakeJob("5")})
    assert sent["environment"]["GL_TABLE_TEST"] == "here" and sent["keep_going"] is False
    given = wire.request_args(JOB_VERBS["submit"], {"job": FakeJob("5"), "environment": {"X": "1"}})
    assert given["environment"] == {"X": "1"}


def test_a_request_that_does_not_fit_its_verb_is_refused_as_a_call_would_be():
    with pytest.raises(TypeError, match="unexpected keyword argument 'reason'"):
        wire.call_args(JOB_VERBS["kill"], {"fqid": "1", "reason": "x"}, str)
    with pytest.raises(TypeError, match="missing a required argument: 'fqid'"):
        wire.call_args(JOB_VERBS["kill"], {}, str)
    with pytest.raises(TypeError, match="unexpected keyword argument 'poll'"):
        wire.call_args(JOB_VERBS["wait"], {"fqids": [], "poll": 0}, str)  # local, never sent
    with pytest.raises(TypeError):
        wire.call_args(wire.VERBS["stop"], {"now": True}, str)


@pytest.mark.parametrize("name", sorted(wire.VERBS))
def test_the_answer_and_the_clients_return_value_have_the_declared_shape(name):
    verb = wire.VERBS[name]
    args = sample_args(verb)
    job = args.get("job")
    value = {Result.NOTHING: None, Result.REMOVED: None, Result.JOB: job,
             Result.STATUSES: [Status.COMPLETED, Status.FAILED], Result.TEXT: "text\n",
             Result.RECORDS: [{"fqid": "3", "reaped": True}], Result.INFO: {"pid": 1}}[verb.result]
    assert verb.result.matches(value, job)
    sent = wire.answer(verb, value, args)
    back = wire.returned(verb, sent, args)
    assert verb.result.matches(back, job) and back == value
    if verb.result.reports_job_status:
        assert sent == "running"  # the job's status after the verb
    if verb.result is Result.REMOVED:
        assert sent == "removed"
    if verb.result is Result.STATUSES:
        assert sent == ["completed", "failed"]


def test_result_shapes_tell_each_other_apart():
    job = FakeJob("1")
    assert not Result.NOTHING.matches("killed") and not Result.JOB.matches(None, job)
    assert not Result.STATUSES.matches(["completed"]) and not Result.RECORDS.matches([1])
    assert not Result.TEXT.matches(None) and not Result.INFO.matches([])


# -- read your writes ----------------------------------------------------------------------------

class FakeStorage:
    def __init__(self) -> None:
        self.last = b"\0" * 8

    def lastTransaction(self):  # noqa: N802 (ZODB's name)
        return self.last


class FakeDB:
    def __init__(self) -> None:
        self.storage = FakeStorage()

    def lastTransaction(self):  # noqa: N802
        return self.storage.last


def test_either_end_waits_until_its_view_has_the_transaction_named():
    db = FakeDB()
    assert wire.seen_tid(db) == "0" * 16
    wire.catch_up(db, "")  # nothing named: at once
    later = (5).to_bytes(8, "big")
    threading.Timer(0.05, lambda: setattr(db.storage, "last", later)).start()
    started = time.monotonic()
    wire.catch_up(db, f"{5:016x}")
    assert 0.04 < time.monotonic() - started < 5 and wire.seen_tid(db) == f"{5:016x}"
    started = time.monotonic()
    wire.catch_up(db, f"{9:016x}", timeout=0.05)  # never comes: gives up after the timeout
    assert time.monotonic() - started < 1


# -- the service's dispatch -------------------------------------------------------------------

class FakeConnection:
    def __init__(self, jobs: dict) -> None:
        self.jobs = self
        self._jobs = jobs
        self.refreshed = 0
        self.closed = False

    def get(self, fqid):
        return self._jobs[fqid]

    def refresh(self) -> None:
        self.refreshed += 1

    def close(self) -> None:
        self.closed = True


class FakeEngine:
    """What the dispatch uses of the engine: its connection, readers and run_verb."""

    def __init__(self) -> None:
        self.job = FakeJob("3")
        self.jobs = FakeConnection({"3": self.job})
        self.readers: list[FakeConnection] = []
        self.calls: list[tuple[str, dict, bool]] = []
        self.repository = self
        self.db = FakeDB()
        self.verbs: Verbs | None = None
        self.origins: list[str] = []

    def connect(self) -> FakeConnection:
        self.readers.append(FakeConnection({"3": FakeJob("3", Status.COMPLETED)}))
        return self.readers[-1]

    def refresh(self) -> None:
        pass

    def run_verb_from(self, origin, name, /, **args):
        assert self.verbs is not None
        self.calls.append((name, args, self.verbs._lock.locked()))
        self.origins.append(origin)
        if name == "kill":
            args["job"].status = Status.KILLED
        return {"wait": [Status.COMPLETED], "peek": "out\n", "leaks": [], "hosts": []}.get(name)


def fake_service():
    engine = FakeEngine()
    stopped: list[str] = []
    engine.stopping = threading.Event()

    def refuse_if_stopping() -> None:  # the service's own: tests/service/test_service.py
        if engine.stopping.is_set():
            raise ServiceStopping("/root", "asked by a client")

    verbs = Verbs(engine, lambda: {"pid": 7}, stopped.append,  # type: ignore[arg-type]
                  stopping=refuse_if_stopping)
    engine.verbs = verbs
    return engine, verbs, stopped


def test_the_dispatch_runs_each_kind_of_verb_as_the_table_says():
    engine, verbs, stopped = fake_service()
    # A writing verb: under the lock, on the service's own connection, the status after it.
    assert dispatch(verbs, {"verb": "kill", "args": {"fqid": "3"}, "tid": "",
                            "from": "ganga-like kill,\npid 9"}) == "killed"
    assert engine.calls[-1] == ("kill", {"job": engine.job}, True)
    assert engine.origins[-1] == "ganga-like kill,?pid 9"  # who asked, as one line
    assert dispatch(verbs, {"verb": "remove", "args": {"fqid": "3"}}) == "removed"
    assert engine.calls[-1] == ("remove", {"job": engine.job, "force": False}, True)
    assert engine.origins[-1] == "a client"  # a request that did not say
    # A reading verb: not under the lock, on a connection of its own, closed afterwards;
    # a long one (wait) is given that connection's refresh.
    assert dispatch(verbs, {"verb": "wait", "args": {"fqids": ["3"], "timeout": 1}}) == ["completed"]
    name, args, locked = engine.calls[-1]
    reader = engine.readers[-1]
    assert (name, locked, reader.closed) == ("wait", False, True)
    assert args["jobs"][0].status is Status.COMPLETED
    looked = reader.refreshed
    args["refresh"]()  # it looks again on that connection ...
    assert reader.refreshed == looked + 1
    engine.stopping.set()  # ... until the service stops: the wait ends, its client asks the next
    with pytest.raises(ServiceStopping):
        args["refresh"]()
    assert reader.refreshed == looked + 1
    engine.stopping.clear()
    assert dispatch(verbs, {"verb": "peek", "args": {"fqid": "3"}}) == "out\n"
    assert "refresh" not in engine.calls[-1][1] and engine.readers[-1].closed
    # The service's own.
    assert dispatch(verbs, {"verb": "hello"}) == {"pid": 7} == dispatch(verbs, {"verb": "status"})
    assert dispatch(verbs, {"verb": "stop"}) == "stopping" and stopped == ["asked by a client"]


def test_an_unknown_request_names_every_verb_the_service_knows():
    _engine, verbs, _ = fake_service()
    with pytest.raises(GangaLikeError) as error:
        dispatch(verbs, {"verb": "explode", "args": {}})
    assert str(error.value) == ("unknown request 'explode'; the service knows: "
                                + ", ".join(sorted(EXPECTED)))
