"""The event rules (ganga_like.event_rules): what a backend's event does to a job.

No database, no Ray: the table is checked over every situation (event kind x job
status x exit-code class x handle error x monitored x current attempt), the monitor's
``_apply_event`` is run over every situation on in-memory jobs (the one status function
accepts every move it makes), today's behaviour is pinned case by case, and the
documentation's copies of the event table and of the backend-detail table are
checked against the code. Rewrite both copies with
``.venv/bin/python tests/unit/test_event_rules.py --write-docs``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ganga_like import event_rules as er
from ganga_like.backends import base
from ganga_like.backends.runtime import runs as rs
from ganga_like.event_rules import ExitClass, Rule, Situation, rule_for
from ganga_like.status import ACTIVE, FROZEN, TRANSITIONS, Status

S = Status
E = ExitClass
SITUATIONS = list(er.situations())
DOCS = Path(__file__).resolve().parents[2] / "docs"
EXIT_CODES = {E.ZERO: 0, E.NONZERO: 3, E.NONE: None}


def situation(kind: str, status: Status, exit_: ExitClass = E.NONE, *, error: bool = False,
              monitored: bool = True, current: bool = True) -> Situation:
    return Situation(kind, status, exit_, error, monitored, current)


# --- the table, over every situation ---------------------------------------------------


def test_the_situations_are_the_whole_product():
    assert len(SITUATIONS) == len(base.EVENT_KINDS) * len(Status) * len(ExitClass) * 2 * 2 * 2
    assert len(set(SITUATIONS)) == len(SITUATIONS)


def test_every_situation_matches_exactly_one_row():
    for s in SITUATIONS:
        matching = [row for row in er.ROWS if row.matches(s)]
        assert len(matching) == 1, f"{s}: {len(matching)} rows match"


def test_every_row_is_used():
    used = {next(i for i, row in enumerate(er.ROWS) if row.matches(s)) for s in SITUATIONS}
    assert used == set(range(len(er.ROWS)))


def test_every_rule_moves_only_along_edges_of_the_status_table_or_is_an_explicit_ignore():
    for s in SITUATIONS:
        rule = rule_for(s)
        assert rule.why, s  # every rule, an ignore included, is explicit and says why
        source = s.status
        for target in rule.moves:
            assert (source, target) in TRANSITIONS, f"{s}: {source.value} -> {target.value} is no edge"
            source = target


def test_a_skipped_event_does_nothing_at_all():
    for s in SITUATIONS:
        rule = rule_for(s)
        assert rule.skip == (not s.monitored or not s.current), s
        if rule.skip:
            assert rule.ignored and not rule.touch, s


def test_only_events_that_end_a_run_and_are_not_skipped_note_the_top_job():
    for s in SITUATIONS:
        assert rule_for(s).touch == (s.kind in er.ENDING_KINDS and s.monitored and s.current), s


def test_jobs_that_are_not_active_never_move_and_final_ones_keep_their_detail():
    for s in SITUATIONS:
        rule = rule_for(s)
        if s.status not in ACTIVE:
            assert rule.moves == (), s
            assert not (rule.collect or rule.auto_resubmit or rule.record_exit_code), s
        if s.status in FROZEN:
            assert not rule.moves, s


def test_outputs_are_collected_only_after_an_exit_code_of_zero():
    for s in SITUATIONS:
        rule = rule_for(s)
        if rule.collect:
            assert (s.kind, s.exit, s.handle_error) == (base.FINISHED, E.ZERO, False), s
            assert s.status in ACTIVE and (rule.moves[-1:] == (S.COMPLETING,) or s.status is S.COMPLETING)


def test_only_run_failures_are_resubmitted_automatically():
    for s in SITUATIONS:
        rule = rule_for(s)
        if rule.auto_resubmit:
            assert rule.moves[-1] is S.FAILED and s.kind in (base.FINISHED, base.LOST), s
            assert not s.handle_error, s  # a refused start is not resubmitted automatically


def test_a_kind_outside_the_contract_is_ignored():
    rule = rule_for(situation("exploded", S.RUNNING))
    assert rule.ignored and not rule.touch


# --- today's behaviour, case by case ---------------------------------------------------


FIN, LOST, KILLED, STARTED, QUEUED, DETAIL = (base.FINISHED, base.LOST, base.KILLED, base.STARTED,
                                              base.QUEUED, base.DETAIL)


@pytest.mark.parametrize(("s", "moves"), [
    (situation(FIN, S.RUNNING, E.ZERO), (S.COMPLETING,)),
    (situation(FIN, S.SUBMITTED, E.ZERO), (S.COMPLETING,)),
    (situation(FIN, S.SUBMITTING, E.ZERO), (S.SUBMITTED, S.COMPLETING)),
    (situation(FIN, S.COMPLETING, E.ZERO), ()),
    (situation(FIN, S.RUNNING, E.NONZERO), (S.FAILED,)),
    (situation(FIN, S.RUNNING, E.NONE), (S.FAILED,)),
    (situation(FIN, S.COMPLETING, E.NONZERO), (S.FAILED,)),
    (situation(FIN, S.SUBMITTING, E.NONZERO), (S.SUBMITTED, S.FAILED)),
    (situation(LOST, S.RUNNING), (S.FAILED,)),
    (situation(LOST, S.COMPLETING), (S.FAILED,)),
    (situation(LOST, S.SUBMITTING), (S.SUBMITTED, S.FAILED)),
    (situation(KILLED, S.RUNNING), (S.KILLED,)),
    (situation(KILLED, S.SUBMITTED), (S.KILLED,)),
    (situation(KILLED, S.SUBMITTING), (S.SUBMITTED, S.KILLED)),
    (situation(KILLED, S.COMPLETING), ()),  # no edge: the finished run's outputs decide
    (situation(STARTED, S.SUBMITTED), (S.RUNNING,)),
    (situation(STARTED, S.SUBMITTING), (S.SUBMITTED, S.RUNNING)),
    (situation(STARTED, S.RUNNING), ()),
    (situation(STARTED, S.COMPLETING), ()),
    (situation(QUEUED, S.SUBMITTING), (S.SUBMITTED,)),
    (situation(QUEUED, S.SUBMITTED), ()),
    (situation(QUEUED, S.RUNNING), ()),
    (situation(DETAIL, S.SUBMITTING), ()),
    (situation(DETAIL, S.RUNNING), ()),
    (situation(FIN, S.KILLED, E.ZERO), ()),  # killed by the user: the backend's end is old news
    (situation(LOST, S.FAILED), ()),
    (situation(STARTED, S.COMPLETED), ()),
    (situation(QUEUED, S.NEW, error=True), ()),
    (situation(LOST, S.SUBMITTING, error=True), (S.NEW,)),
    (situation(QUEUED, S.SUBMITTED, error=True), (S.FAILED,)),
    (situation(LOST, S.RUNNING, error=True), ()),
    (situation(FIN, S.RUNNING, E.ZERO, monitored=False), ()),
    (situation(FIN, S.RUNNING, E.ZERO, current=False), ()),
    (situation(STARTED, S.SUBMITTED, current=False), ()),
])
def test_the_moves_of_todays_behaviour(s, moves):
    assert rule_for(s).moves == moves


def test_finished_with_exit_code_zero_is_collected_then_completed_or_failed_by_its_outputs():
    rule = rule_for(situation(FIN, S.RUNNING, E.ZERO))
    assert (rule.collect, rule.auto_resubmit, rule.record_exit_code, rule.touch) == (True, False, True, True)
    assert rule.detail_for("") == rs.DONE_DETAIL and rule.detail_for("Gathered") == "Gathered"
    assert rule.note_for("the backend's words") == ""  # completing carries no note
    # Finished again while completing: collected (and postprocessed) again, as before.
    assert rule_for(situation(FIN, S.COMPLETING, E.ZERO)).collect


def test_a_failed_exit_says_its_code_and_the_stderr_tail_and_is_resubmitted_automatically():
    rule = rule_for(situation(FIN, S.RUNNING, E.NONZERO))
    assert rule.note_for("", exit_code=3) == "exit code 3"
    assert rule.note_for("", exit_code=None) == "exit code None"  # no exit code: a failure
    assert rule.note_for("segfault") == "segfault"
    assert rule.stderr_tail and rule.auto_resubmit and rule.record_exit_code


def test_lost_and_killed_say_their_default_words():
    lost = rule_for(situation(LOST, S.RUNNING))
    assert lost.note_for("") == "the backend lost it without an exit status"
    assert lost.detail_for("") == rs.LOST_DETAIL and lost.detail_for("Node gone") == "Node gone"
    assert lost.auto_resubmit and not lost.record_exit_code and not lost.stderr_tail
    killed = rule_for(situation(KILLED, S.RUNNING))
    assert killed.note_for("") == "killed" and killed.note_for("by the admin") == "by the admin"
    assert killed.detail_for("Anything") == rs.KILLED_DETAIL  # the event's own detail is not used
    assert not killed.auto_resubmit


def test_started_and_queued_record_the_handle_and_queued_says_so():
    started = rule_for(situation(STARTED, S.SUBMITTED))
    assert started.record_handle and started.detail_for("") == rs.RUNNING_DETAIL
    assert started.note_for("pid 12") == "pid 12"
    queued = rule_for(situation(QUEUED, S.SUBMITTING))
    assert queued.record_handle and queued.note_for("waiting") == "queued"
    assert queued.detail_for("") == "" and queued.detail_for(rs.QUEUED_DETAIL) == rs.QUEUED_DETAIL
    # A final job still records a started handle (where its leftovers run) and details.
    assert rule_for(situation(STARTED, S.KILLED)).record_handle
    assert rule_for(situation(DETAIL, S.COMPLETED)).detail_for("Gathering") == "Gathering"


def test_an_ending_event_records_a_handle_that_names_the_run_and_keeps_a_known_pid():
    """Recovery may first see a run ended (its STARTED event died with the service): the
    ending event's handle is recorded, so the subjob keeps its backend id (Slurm's task
    id, Local's pid); but a handle that knows less never replaces the STARTED one."""
    for s in (situation(FIN, S.SUBMITTED, E.ZERO), situation(FIN, S.SUBMITTING, E.NONZERO),
              situation(LOST, S.RUNNING), situation(KILLED, S.SUBMITTED)):
        assert rule_for(s).record_handle, s
    assert not rule_for(situation(FIN, S.KILLED, E.ZERO)).record_handle  # already final: left as is
    task = base.Handle("Slurm", "1.0", task_id="12_0", attempt=1)
    assert er.records(task, None) and not er.records(base.Handle("Slurm", "1.0", attempt=1), None)
    started = base.Handle("Slurm", "1.0", pid=99, task_id="12_0", attempt=1).to_tuple()
    assert not er.records(task, started)  # it would drop this attempt's pid
    assert er.records(base.Handle("Slurm", "1.0", task_id="13_0", attempt=2), started)  # a newer attempt's
    assert er.records(base.Handle("Local", "1.0", pid=7, attempt=1), started)


def test_a_refused_start_rolls_back_or_fails_stamped_now_and_is_not_resubmitted():
    back = rule_for(situation(LOST, S.SUBMITTING, error=True))
    assert back.note_for("ignored", error="no such file") == "submission failed: no such file"
    assert not back.at_event_time and not back.auto_resubmit and back.touch
    failed = rule_for(situation(QUEUED, S.SUBMITTED, error=True))
    assert failed.note_for("", error="x") == "the backend could not start it: x"
    assert not failed.touch and not failed.record_handle
    assert er.REFUSED[S.SUBMITTING][0] is S.NEW


# --- the monitor applies the rules: every situation, on in-memory jobs -------------------


@pytest.fixture
def apply(make_job_in, monkeypatch):
    from ganga_like.engine import monitor as monitor_module
    from ganga_like.engine.operations import output

    monkeypatch.setattr(output, "log_tail", lambda ctx, job: "Traceback: boom")

    def run(s: Situation, note: str = "", detail: str = "", pid: int = 0):
        job = make_job_in(s.status.value)
        job.submit_counter = 2
        job.backend_detail = "Before"
        job.backend_note = "the note before"
        if not s.monitored:
            job.monitored = False
        handle = base.Handle("Local", job.fqid, host="node1", pid=pid, attempt=2 if s.current else 1,
                             error="no such file" if s.handle_error else "")
        event = base.Event(1, job.fqid, s.kind, 1234.5, EXIT_CODES[s.exit], note, detail, handle)
        mon = monitor_module.Monitor(SimpleNamespace())
        touched: list = []
        mon._touch = touched.append  # type: ignore[method-assign]
        completing: list[str] = []
        failed_auto: list[str] = []
        mon._apply_event(job, event, completing, failed_auto)
        return job, completing, failed_auto, touched

    return run


def test_the_monitor_applies_every_situations_rule_and_every_move_is_accepted(apply):
    for s in SITUATIONS:
        for note, detail, pid in (("", "", 0), ("the backend's note", "Gathering", 4242)):
            rule = rule_for(s)
            job, completing, failed_auto, touched = apply(s, note, detail, pid)
            # Each move starts where the previous one ended; no moves: no pair (the lone start is dropped).
            assert [(src, dst) for _, src, dst, *_ in job.history] == list(zip(
                [s.status.value] + [m.value for m in rule.moves[:-1]], [m.value for m in rule.moves],
                strict=False)), s
            assert job.status is (rule.moves[-1] if rule.moves else s.status), s
            if rule.moves:
                when, _, _, last_note, source, *_ = job.history[-1]
                assert source == "backend" and (when == 1234.5) == rule.at_event_time, s
                want = rule.note_for(note, EXIT_CODES[s.exit], "no such file" if s.handle_error else "")
                assert last_note == want + (" | stderr: Traceback: boom" if rule.stderr_tail else ""), s
            assert job.backend_detail == (rule.detail_for(detail) or "Before"), s
            # The note goes with the detail: the event's where the rule keeps it, cleared
            # where the rule sets a detail of its own, else left.
            assert job.backend_note == (note if rule.backend_note else
                                        "" if rule.detail_for(detail) else "the note before"), s
            assert (job.handle is not None and job.handle[3] == pid and pid > 0) == \
                (rule.record_handle and pid > 0), s
            assert job.exit_code == (EXIT_CODES[s.exit] if rule.record_exit_code else None), s
            assert completing == ([job.fqid] if rule.collect else []), s
            assert failed_auto == ([job.fqid] if rule.auto_resubmit else []), s
            assert touched == ([job] if rule.touch else []), s


def test_the_monitor_on_a_run_that_finished_with_zero(apply):
    job, completing, failed_auto, touched = apply(situation(FIN, S.RUNNING, E.ZERO))
    assert job.status is S.COMPLETING and job.exit_code == 0 and job.backend_detail == "Done"
    assert completing == [job.fqid] and failed_auto == [] and touched == [job]


def test_the_monitor_on_a_run_that_failed(apply):
    job, completing, failed_auto, _ = apply(situation(FIN, S.RUNNING, E.NONZERO))
    assert job.status is S.FAILED and job.exit_code == 3
    assert job.history[-1][3] == "exit code 3 | stderr: Traceback: boom"
    assert failed_auto == [job.fqid] and completing == []


def test_the_monitor_on_an_unmonitored_job_and_on_an_earlier_attempt(apply):
    for s in (situation(KILLED, S.RUNNING, monitored=False), situation(KILLED, S.RUNNING, current=False)):
        job, completing, failed_auto, touched = apply(s, "n", "d", 7)
        assert job.status is S.RUNNING and job.history == () and job.backend_detail == "Before"
        assert job.handle is None and (completing, failed_auto, touched) == ([], [], [])


# --- the documentation's copies ----------------------------------------------------------

EVENT_BEGIN, EVENT_END = "<!-- event-rules:begin -->", "<!-- event-rules:end -->"
DETAIL_BEGIN, DETAIL_END = "<!-- backend-details:begin -->", "<!-- backend-details:end -->"
COPIES = [(DOCS / "concepts.md", EVENT_BEGIN, EVENT_END, er.table_markdown),
          (DOCS / "architecture.md", DETAIL_BEGIN, DETAIL_END, rs.details_markdown)]


def _shown(text: str, begin: str, end: str) -> str:
    return text[text.index(begin) + len(begin):text.index(end)].strip()


@pytest.mark.parametrize(("page", "begin", "end", "table"), COPIES, ids=["event-rules", "backend-details"])
def test_the_docs_show_the_tables_from_the_code(page, begin, end, table):
    assert _shown(page.read_text(), begin, end) == table(), (
        f"{page.name}'s table between {begin} and {end} is out of date: run "
        ".venv/bin/python tests/unit/test_event_rules.py --write-docs")


def test_the_detail_words_are_the_tables_and_the_monitors_defaults_are_among_them():
    assert set(rs.DETAILS) >= {rs.QUEUED_DETAIL, rs.RUNNING_DETAIL, rs.DONE_DETAIL, rs.LOST_DETAIL,
                               rs.KILLED_DETAIL, rs.LINGERING_DETAIL, rs.PENDING_DETAIL}
    for detail in rs.DETAILS.values():
        assert set(detail.states) <= set(rs.RUN_STATES)
    for s in SITUATIONS:
        rule: Rule = rule_for(s)
        assert rule.detail == "" or rule.detail in rs.DETAILS, s
    assert rs.node_lost_detail(["h1", "h2"]).startswith(rs.NODE_LOST_DETAIL + ": h1, h2")


def write_docs() -> None:
    for page, begin, end, table in COPIES:
        text = page.read_text()
        start, stop = text.index(begin) + len(begin), text.index(end)
        page.write_text(text[:start] + "\n" + table() + "\n" + text[stop:])
        print(f"rewrote the table between {begin} and {end} in {page}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-docs"]:
        write_docs()
    else:
        print("usage: python tests/unit/test_event_rules.py --write-docs", file=sys.stderr)
        sys.exit(2)
