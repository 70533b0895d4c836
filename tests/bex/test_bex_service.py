"""BEX queues end to end: a real service whose Ray head two more nodes join (hosts n1 and
n2, each a Ray node with its ``host:<name>`` resource), BEX job files submitted with
``ganga-like submit FILE.job --hosts``, and the queue's files compared byte for byte
with the formats. One service and one cluster for the whole module (each costs seconds);
the last test kills that service with SIGKILL, and the nodes go with its Ray.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.service.test_cluster import RAY, _service_ray_address
from tests.service.test_service import client, service_pid, wait_for
from tests.test_cli import finish_root, gl_env, run_gl

HOSTS = ("n1", "n2")
LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (n1|n2) (\S+) ([A-Z]+)( .*)?\Z")


def start_service(root: Path, env_extra: dict[str, str] | None = None) -> None:
    """The root's service, its Ray open to nodes that join it."""
    started = run_gl(root, "service", "start", "--ray-open", check_clean=False, env_extra=env_extra)
    assert started.returncode == 0, started.stderr


def join_host(root: Path, name: str) -> None:
    """Host ``name``: a Ray node joined to the service's head with its host:<name> resource
    (same machine: the head's Ray directory; Ray's token authentication, the root's token)."""
    address = _service_ray_address(root)
    env = gl_env(root)
    env["RAY_TMPDIR"] = json.loads((root / "service.json").read_text())["ray_dir"]
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(root / "ray-auth-token"))
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # Ray's loopback switch refuses joins
    joined = subprocess.run([RAY, "start", f"--address={address}", "--num-cpus=1",
                             f'--resources={{"host:{name}": 1}}'],
                            env=env, text=True, capture_output=True, timeout=120)
    assert joined.returncode == 0, joined.stdout[-2000:] + joined.stderr[-2000:]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bex") / "gl"
    try:
        start_service(root, {"GANGA_LIKE_KEEP_HISTORY": "1"})
        for name in HOSTS:
            join_host(root, name)
        yield root
    finally:
        finish_root(root, what="the BEX test's service and its joined nodes")


def gl(root: Path, *args: str) -> subprocess.CompletedProcess:
    return run_gl(root, *args, check_clean=False, timeout=120)


def job_file(root: Path, name: str, text: str) -> Path:
    path = root.parent / name
    path.write_text(text)
    return path


def stored_ids(root: Path) -> list[str]:
    listed = gl(root, "jobs", "--json", "--all")
    assert listed.returncode == 0, listed.stderr
    return sorted(row["fqid"] for row in json.loads(listed.stdout))


def last_change(root: Path, fqid: str) -> dict:
    """The (sub)job's last history entry as stored: its time (a float), target and note."""
    top, sub = fqid.split(".")
    read = client(root, f"""
        import json
        from ganga_like.status import history_entries
        entry = history_entries(jobs({top}).subjobs[{sub}].history)[-1]
        print("LAST", json.dumps({{"time": entry.when, "to": entry.dst, "note": entry.note}}))
    """)
    line = [line for line in read.stdout.splitlines() if line.startswith("LAST ")]
    assert line, read.stdout + read.stderr
    return json.loads(line[0].removeprefix("LAST "))


def queue_log(root: Path, name: str) -> list[tuple[str, str, str, str]]:
    """(host, job-id, code, message) of the queue's log lines about job ``name`` (and
    the host lines, '-'), every line checked against the seed's format."""
    found = []
    for line in (root / "queue" / "log").read_text().splitlines():
        match = LINE.match(line)
        assert match, f"not a queue-log line: {line!r}"
        if match.group(2) in (name, "-"):
            found.append((match.group(1), match.group(2), match.group(3),
                          (match.group(4) or "").strip()))
    return found


def wait_for_file(path: Path, timeout: float = 30) -> None:
    wait_for(path.exists, timeout, f"{path}")


def wait_retired(queue: Path, host: str, name: str, timeout: float = 30) -> None:
    """Until an OK job's files are all in history/<host>/: they move one by one after
    its .stat says OK, the link last (bex/files.py: ``_retire``)."""
    wait_for(lambda: not os.path.lexists(queue / "hosts" / host / f"{name}.job")
             and os.path.lexists(queue / "history" / host / f"{name}.job"), timeout,
             f"{name}'s files to move to history/{host}")


def test_a_job_file_runs_once_per_host_and_its_queue_files_say_so(root):
    text = "ID: 20261206-hello\nSubject: say hello\n\necho \"hello from $GANGA_LIKE_HOST\"\n"
    path = job_file(root, "hello.job", text)
    done = gl(root, "submit", str(path), "--hosts", "n1,n2", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "completed" and outcome["subjobs"] == {"completed": 2}
    queue = root / "queue"
    assert (queue / "jobs" / "20261206-hello.job").read_text() == text  # the file, byte for byte
    for index, host in enumerate(HOSTS):
        history = queue / "history" / host  # keep_history is set for this service
        wait_retired(queue, host, "20261206-hello")
        assert os.readlink(history / "20261206-hello.job") == "../../jobs/20261206-hello.job"
        last = last_change(root, f"{outcome['fqid']}.{index}")
        assert last["to"] == "completed"
        message = last["note"] or "Done"
        assert (history / "20261206-hello.stat").read_text() == (
            f"Time: {int(last['time'])}\nStatus: OK\nMessage: {message}\n")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["time"]))
        assert (history / "20261206-hello.log").read_text() == (
            f"=== attempt 1 on {host}, ended {stamp}: OK {message}\n--- stdout\nhello from {host}\n")
        said = [code for h, _name, code, _msg in queue_log(root, "20261206-hello") if h == host]
        assert said[0] == "NEW" and said[-2:] == ["OK", "DONE"], said
        assert "RUN" in said and said.index("RUN") < said.index("OK"), said
        assert not os.path.lexists(queue / "hosts" / host / "20261206-hello.stat")


def code_of(path: Path) -> str:
    """The BEX code a ``.stat`` file says ('' while there is none)."""
    try:
        return path.read_text().split("Status: ")[1].split("\n")[0]
    except (FileNotFoundError, IndexError):
        return ""


def test_prep_is_shown_while_it_runs_then_the_body(root, tmp_path):
    go = tmp_path / "prep-may-end"  # the prep runs until the test has seen PREP
    path = job_file(root, "prep.job", f'ID: prep-1\nPrep: while [ ! -e "{go}" ]; do sleep 0.1; done; '
                                      'echo prepared\n\necho body\n')
    submitted = gl(root, "submit", str(path), "--hosts", "n2")
    assert submitted.returncode == 0, submitted.stderr
    stat_path = root / "queue" / "hosts" / "n2" / "prep-1.stat"
    seen = []

    def ok_seen() -> bool:
        for where in (stat_path, root / "queue" / "history" / "n2" / "prep-1.stat"):
            code = code_of(where)
            if not code:
                continue
            if not seen or seen[-1] != code:
                seen.append(code)
            return code == "OK"
        return False

    wait_for(lambda: code_of(stat_path) == "PREP", 60, "the prep to be shown")
    go.write_text("")
    wait_for(ok_seen, 60, "the prep job to finish")
    assert seen[-1] == "OK", seen
    codes = [code for h, _n, code, _m in queue_log(root, "prep-1") if h == "n2"]
    assert codes.index("PREP") < codes.index("RUN") < codes.index("OK"), codes
    wait_retired(root / "queue", "n2", "prep-1")
    log = (root / "queue" / "history" / "n2" / "prep-1.log").read_text()
    assert log.endswith("--- stdout\nprepared\nbody\n"), log


def test_a_failed_job_stays_queued_and_its_transcript_keeps_every_attempt(root):
    path = job_file(root, "fail.job", "ID: fail-1\n\necho \"try\"; echo oops >&2; exit 3\n")
    done = gl(root, "submit", str(path), "--hosts", "n1", "--wait", "--json")
    assert done.returncode == 3, done.stderr  # ganga-like's exit code for a failed job
    fqid = json.loads(done.stdout)["fqid"]
    again = gl(root, "resubmit", fqid)
    assert again.returncode == 0, again.stderr
    waited = gl(root, "wait", fqid, "--timeout", "60")
    assert waited.returncode == 3, waited.stdout + waited.stderr
    host = root / "queue" / "hosts" / "n1"
    wait_for(lambda: (host / "fail-1.log").read_text().count("=== attempt") == 2, 30, "attempt 2")
    last = last_change(root, f"{fqid}.0")
    assert last["to"] == "failed"
    assert (host / "fail-1.stat").read_text() == (
        f"Time: {int(last['time'])}\nStatus: FAILED\nMessage: {' '.join(last['note'].split())}\n")
    log = (host / "fail-1.log").read_text()
    attempts = re.findall(r"^=== attempt (\d) on n1, ended [\d-]+ [\d:]+: FAILED (.*)$", log, re.M)
    assert [a for a, _ in attempts] == ["1", "2"], log
    assert log.count("--- stdout\ntry\n--- stderr\noops\n") == 2, log
    # Each attempt's codes, in order: those of its status changes always (also when the
    # writer looked only after it failed); SEND (a backend detail) when the writer saw it.
    codes = [code for _h, name, code, _m in queue_log(root, "fail-1") if name == "fail-1"]
    assert [c for c in codes if c != "SEND"] == ["NEW", "RUN", "FAILED"] * 2, codes


def test_the_queue_is_private(root):
    for where, _dirs, files in os.walk(root / "queue"):
        assert stat.S_IMODE(os.stat(where).st_mode) == 0o700, where
        for name in files:
            path = os.path.join(where, name)
            if not os.path.islink(path):
                assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


@pytest.mark.parametrize(("text", "hosts", "message"), [
    ("ID: bad one\n\necho\n", "n1", "BEX job file {path}, line 1: ID 'bad one' is not valid"),
    ("Subject: x\n\necho\n", "n1", "BEX job file {path}: no ID header"),
    ("ID: dup\necho\n", "n1", "BEX job file {path}: no blank line"),
    ("ID: 20261206-hello\n\necho again\n", "n1",
     "BEX job '20261206-hello' is not queued: the queue has a job with this ID already"),
    ("ID: nowhere\n\necho\n", "n1,n9",
     "BEX job 'nowhere' is not queued: unknown host 'n9'; the Hosts backend knows: "),
    ("ID: twice\n\necho\n", "n1,n1", "BEX job 'twice' is not queued: host 'n1' is given twice"),
], ids=["bad-id", "no-id", "no-blank-line", "duplicate-id", "unknown-host", "host-twice"])
def test_bad_input_is_one_line_and_nothing_is_stored(root, text, hosts, message):
    if "already" in message and not (root / "queue" / "jobs" / "20261206-hello.job").exists():
        issued = job_file(root, "hello.job", "ID: 20261206-hello\n\necho hello\n")
        assert gl(root, "submit", str(issued), "--hosts", "n1").returncode == 0
    before = stored_ids(root)
    path = job_file(root, "bad.job", text)
    refused = gl(root, "submit", str(path), "--hosts", hosts)
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(path=path) in lines[0], refused.stderr
    if "unknown host" in message:
        assert "n1, n2" in lines[0], lines[0]  # the valid choices are named
    assert stored_ids(root) == before
    if "already" not in message:
        assert not any(name.startswith(("nowhere", "twice")) for name in
                       os.listdir(root / "queue" / "jobs"))


def test_the_command_form_of_submit_is_unchanged_and_hosts_belong_to_a_job_file(root):
    plain = gl(root, "submit", "--wait", "--", "/bin/echo", "plain")
    assert plain.returncode == 0 and plain.stdout.endswith(": completed\n"), plain.stdout + plain.stderr
    mixed = gl(root, "submit", "--hosts", "n1", "--", "/bin/echo", "x")
    assert mixed.returncode == 2 and "--hosts takes a BEX job file" in mixed.stderr, mixed.stderr
    client_side = client(root, """
        from ganga_like.errors import BexJobFileError
        from ganga_like.client.default import default_session
        try:
            default_session().submit_bex("no headers at all", ["n1"])
        except BexJobFileError as error:
            print("refused:", error)
    """)
    assert "refused: BEX job file <job file>: no blank line" in client_side.stdout, client_side.stderr


def test_a_script_submits_a_job_file_through_the_gpi(root):
    path = job_file(root, "gpi.job", "ID: gpi-1\nSubject: from a script\n\necho scripted\n")
    script = client(root, f"""
        j = submit_bex({str(path)!r}, 'n2')
        print(j.wait(timeout=120).value, j.name, len(j.subjobs), j.subjobs[0].peek().strip())
        try:
            submit_bex({str(path)!r}, ['n2'])
        except GangaLikeError as error:
            print(error)
    """)
    assert script.returncode == 0, script.stderr[-3000:]
    first, second = script.stdout.splitlines()[:2]
    assert first == "completed from a script 1 scripted", script.stdout
    assert second.startswith("BEX job 'gpi-1' is not queued: the queue has a job with this ID"), second


def test_a_claim_left_by_a_crash_does_not_hold_its_id(root):
    """A service killed between claiming an ID (creating queue/jobs/<ID>.job) and storing
    its job leaves a claim that no job holds: the next job file with that ID takes it."""
    (root / "queue" / "jobs" / "orphan-1.job").write_text("ID: orphan-1\n\nleft by a crash\n")
    path = job_file(root, "orphan.job", "ID: orphan-1\n\necho taken over\n")
    done = gl(root, "submit", str(path), "--hosts", "n1", "--wait")
    assert done.returncode == 0, done.stderr
    assert (root / "queue" / "jobs" / "orphan-1.job").read_text() == "ID: orphan-1\n\necho taken over\n"
    again = gl(root, "submit", str(path), "--hosts", "n1")  # now a stored job holds it
    assert again.returncode != 0 and "has a job with this ID already" in again.stderr, again.stderr


def test_a_removed_job_leaves_its_hosts_queues(root):
    path = job_file(root, "gone.job", "ID: gone-1\n\nexit 1\n")
    done = gl(root, "submit", str(path), "--hosts", "n1,n2", "--wait", "--json")
    fqid = json.loads(done.stdout)["fqid"]
    for host in HOSTS:
        wait_for_file(root / "queue" / "hosts" / host / "gone-1.stat")
    removed = gl(root, "remove", fqid)
    assert removed.returncode == 0, removed.stderr
    left = [root / "queue" / "hosts" / h / f"gone-1{suffix}" for h in HOSTS
            for suffix in (".job", ".stat", ".log")]
    wait_for(lambda: not any(os.path.lexists(p) for p in left), 30, "the entries to go")
    assert (root / "queue" / "jobs" / "gone-1.job").exists()  # it was issued: the file stays


# --- the last test: it kills the module's service (and with it the nodes joined to its Ray)


def test_a_kill_9_of_the_service_while_a_job_file_runs(root, tmp_path):
    """The service killed (SIGKILL) while a BEX job runs on host n1: the queue's files say
    what the database says at each step after it."""
    go = tmp_path / "go"
    stat_path = root / "queue" / "hosts" / "n1" / "held-1.stat"
    body = f'echo started; while [ ! -e "{go}" ]; do sleep 0.2; done; echo finished\n'
    path = job_file(root, "held.job", "ID: held-1\n\n" + body)
    submitted = gl(root, "submit", str(path), "--hosts", "n1")
    assert submitted.returncode == 0, submitted.stderr
    wait_for(lambda: code_of(stat_path) == "RUN", 60, "the job to run on n1")
    old = service_pid(root)
    os.kill(old, signal.SIGKILL)  # the service, its Ray and the nodes joined to it go
    wait_for(lambda: not psutil.pid_exists(old) or
             psutil.Process(old).status() == psutil.STATUS_ZOMBIE, 30, "the service to die")
    stat_path.unlink()  # and a write it had not made yet is lost with it
    # A new service: it rewrites the job's files from the database, then recovery finds
    # the payload's host gone: running, held, its node lost (NOPING).
    start_service(root)
    wait_for(lambda: code_of(stat_path) in ("RUN", "NOPING"), 60, "the .stat to be written again")
    wait_for(lambda: code_of(stat_path) == "NOPING", 60, "recovery to find n1 gone")
    # Host n1 comes back: its agent finds the payload still running and watches it again.
    join_host(root, "n1")
    wait_for(lambda: code_of(stat_path) == "RUN", 60, "the payload to be watched again")
    go.write_text("")
    done = gl(root, "wait", "-1", "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: not stat_path.exists(), 30, "the OK job to leave n1's queue")
    codes = [line.split()[4] for line in (root / "queue" / "log").read_text().splitlines()
             if line.split()[3] == "held-1"]
    assert codes[0] == "NEW" and codes[-1] == "OK" and "RUN" in codes, codes
    assert codes.count("OK") == 1, codes
