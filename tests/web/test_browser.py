"""The web view in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright) against a live service with real jobs, asserting what a person sees.

ONE service (started by the module's first ``ganga-like`` command) and ONE browser
serve every test here; each test has jobs of its own where it changes something. A
screenshot of each page is written under the module's temporary directory (the path
is printed: ``pytest -s`` shows it).
"""

from __future__ import annotations

import html
import http.server
import json
import os
import re
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.test_cli import finish_root, one_line, run_gl

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FAILS = ["ok"] * 27 + ["bad1", "bad2", "bad3"]  # the scan's 30 subjobs: 3 fail with exit 3
SCRIPT = 'case "$0" in bad*) echo "no luck for $0" >&2; exit 3;; esac; echo "done $0"'


def gl(root: Path, *args: str) -> str:
    result = run_gl(root, *args, check_clean=False)
    assert result.returncode in (0, 3), result.stderr
    return result.stdout


def submitted(root: Path, *args: str) -> str:
    """``ganga-like submit ARGS``: the new job's id."""
    return gl(root, "submit", *args).split(":")[0].strip()


class Site:
    """The module's repository: its root, the web view's address and the jobs in it."""

    def __init__(self, root: Path, shots: Path) -> None:
        self.root = root
        self.shots = shots
        split = root.parent / "scan.txt"
        split.write_text("\n".join(FAILS) + "\n")
        self.scan = submitted(root, "--name", "scan", "--split", str(split), "--wait", "--",
                              "/bin/sh", "-c", SCRIPT)
        self.url = gl(root, "web").strip()
        self.base = self.url.split("?")[0].rstrip("/")
        self.token = self.url.split("token=")[1]

    def api(self, path: str, method: str = "GET", headers: dict | None = None,
            data: bytes | None = None) -> tuple[int, object]:
        """An HTTP request from a script (the token in the Authorization header unless
        ``headers`` says otherwise); the status and the JSON answer."""
        sent = {"Authorization": f"Bearer {self.token}"} if headers is None else headers
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            return exc.code, json.loads(body) if body.startswith(b"{") else body.decode()

    def shot(self, page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("web") / "gl"
    shots = tmp_path_factory.mktemp("web-screenshots")
    try:
        yield Site(root, shots)
    finally:
        finish_root(root, what="the web view's service")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("the browser tests need Debian's chromium: apt-get install -y chromium "
                    "(.ci/run installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def signed_in(site, browser):
    """A browser context that opened the address ``ganga-like web`` printed."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(site.url)
    yield context, page
    context.close()


def payloads_of(root: Path, fqid: str) -> list[psutil.Process]:
    """The job's live processes (they work in its output directory)."""
    where = str(root / "workspace" / fqid.replace(".", os.sep)) + os.sep
    found = []
    for proc in psutil.process_iter(["cwd"]):
        try:
            if (proc.info["cwd"] or "").startswith(where) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            pass
    return found


def wait_for(check, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


# --- signing in ---------------------------------------------------------------------------------


def test_the_first_visit_signs_in_and_takes_the_token_out_of_the_address(site, signed_in):
    context, page = signed_in
    assert page.url == site.base + "/"  # redirected: no token in the address bar or history
    cookie = next(c for c in context.cookies() if c["name"].startswith("ganga_like_web_"))
    assert cookie["value"] == site.token and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    row = page.locator(f"#job-{site.scan}")
    assert "scan" in row.inner_text() and "failed:3 completed:27" in row.inner_text()
    assert page.locator(f"#status-{site.scan}").inner_text() == "failed"
    assert site.token not in page.content()  # the page holds no token, only the action key
    site.shot(page, "jobs")


def test_a_name_with_markup_shows_as_text(site, signed_in):
    _context, page = signed_in
    name = '<b>bold</b><img src=x onerror="document.title=1">'
    fqid = submitted(site.root, "--name", name, "--wait", "--", "/bin/true")
    page.goto(site.base + "/")
    assert name in page.locator(f'[id="job-{fqid}"]').inner_text()  # shown, not obeyed
    assert page.locator(f'[id="job-{fqid}"] img').count() == 0 and page.title() == "Jobs · ganga_like"


def test_the_jobs_list_says_when_newer_jobs_came(site, signed_in):
    _context, page = signed_in
    page.goto(site.base + "/")
    expect(page.locator("#conn")).to_have_text("live")
    fqid = submitted(site.root, "--name", "newer", "--", "/bin/true")
    expect(page.locator("#jobs-newer")).to_have_text("1 newer job: show them", timeout=30000)
    page.click("#jobs-newer a")
    expect(page.locator(f'[id="job-{fqid}"]')).to_contain_text("newer")


def test_a_request_without_the_token_is_refused(site, browser):
    context = browser.new_context()
    page = context.new_page()
    answer = page.goto(site.base + f"/jobs/{site.scan}")
    assert answer.status == 403
    assert "this page needs the web view's token" in page.inner_text("main")
    assert "scan" not in page.inner_text("main")
    site.shot(page, "refused")
    context.close()
    status, body = site.api("/api/jobs", headers={})
    assert status == 403 and "needs the web view's token" in body["error"]
    status, body = site.api("/api/jobs", headers={"Authorization": "Bearer guess"})
    assert status == 403 and "not this web view's" in body["error"]


# --- the pages --------------------------------------------------------------------------------------


def test_the_job_page_shows_counts_subjobs_history_and_the_queue_log(site, signed_in):
    _context, page = signed_in
    page.goto(f"{site.base}/jobs/{site.scan}")
    assert page.locator("h1").inner_text().startswith(f"Job {site.scan} 'scan'")
    assert "failed:3 completed:27" in page.locator(f"#bar-{site.scan}").inner_text()
    assert page.locator("#subjobs tr").count() == 30
    assert "page 1 of 1" in page.inner_text(".pager")
    history = page.locator("#history").inner_text()
    assert "new → submitting" in history and "submit #" in history
    assert f"{site.scan}.29 failed" in page.inner_text("pre.log")
    site.shot(page, "job")
    # Filtered by status, from the page's own form:
    page.select_option("select[name=status]", "failed")
    page.click("form.filters button")
    page.wait_for_url("**status=failed**")
    rows = page.locator("#subjobs tr")
    assert rows.count() == 3
    assert [rows.nth(i).locator("td").nth(2).inner_text() for i in range(3)] == ["3", "3", "3"]
    assert "3 of the 3 subjobs with status failed" in page.inner_text("main")
    site.shot(page, "job-failed-subjobs")


def test_a_subjob_page_shows_the_end_of_its_output(site, signed_in):
    _context, page = signed_in
    page.goto(f"{site.base}/jobs/{site.scan}.28")
    assert page.locator("h1").inner_text().startswith(f"Subjob {site.scan}.28")
    assert page.locator(f'[id="peek-{site.scan}.28-stderr"]').inner_text().strip() == "no luck for bad2"
    assert "exit code" in page.inner_text("dl.facts") and "Part of job" in page.inner_text("main")
    site.shot(page, "subjob")


def test_why_and_hosts_pages(site, signed_in):
    _context, page = signed_in
    page.goto(f"{site.base}/jobs/{site.scan}/why")
    assert f"{site.scan} is failed: no subjob waits" in page.inner_text(".summary")
    site.shot(page, "why")
    page.goto(f"{site.base}/hosts")
    assert page.locator("h1").inner_text() == "Hosts"
    site.shot(page, "hosts")


def test_a_status_changes_from_running_to_completed_without_a_reload(site, signed_in, tmp_path):
    _context, page = signed_in
    gate = tmp_path / "go"
    fqid = submitted(site.root, "--name", "live", "--", "/bin/sh", "-c",
                     f'echo waiting; while [ ! -e {gate} ]; do sleep 0.1; done; echo finished')
    page.goto(f"{site.base}/jobs/{fqid}")
    status = page.locator(f'[id="status-{fqid}"]')
    expect(status).to_have_text("running", timeout=30000)
    page.evaluate("window.stillTheSamePage = true")
    gate.write_text("")
    expect(status).to_have_text("completed", timeout=30000)  # (the page's CSP forbids eval)
    assert page.evaluate("window.stillTheSamePage") is True  # no reload
    expect(page.locator(f'[id="peek-{fqid}-stdout"]')).to_contain_text("finished", timeout=30000)
    assert "completing → completed" in page.locator("#history").inner_text()  # updated live too
    site.shot(page, "live-completed")


def test_a_kill_from_the_page_asks_first_and_reaches_the_payload(site, signed_in):
    _context, page = signed_in
    fqid = submitted(site.root, "--name", "long", "--", "/bin/sleep", "300")
    wait_for(lambda: payloads_of(site.root, fqid), what="the payload to start")
    page.goto(f"{site.base}/jobs/{fqid}")
    page.click("a.button.kill")
    assert page.locator("h1").inner_text() == f"Kill job {fqid}?"  # asked before it acts
    assert payloads_of(site.root, fqid), "nothing may happen before the confirmation"
    site.shot(page, "kill-confirm")
    page.click("button.danger")
    page.wait_for_url(f"**/jobs/{fqid}?notice=*", timeout=60000)
    assert f"kill {fqid}: now killed" in page.inner_text(".notice")
    assert page.locator(f"#status-{fqid}").inner_text() == "killed"
    assert not payloads_of(site.root, fqid)  # strict mode: confirmed before it says killed
    site.shot(page, "killed")


def test_remove_and_resubmit_from_the_page(site, signed_in):
    context, page = signed_in
    fqid = submitted(site.root, "--name", "to-remove", "--wait", "--", "/bin/echo", "bye")
    watching = context.new_page()  # another tab, open on the job that goes
    watching.goto(f"{site.base}/jobs/{fqid}")
    expect(watching.locator("#conn")).to_have_text("live")
    page.goto(f"{site.base}/jobs/{fqid}")
    page.click("a.button.remove")
    assert "This cannot be undone" in page.inner_text("main")
    page.click("button.danger")
    page.wait_for_url("**/?notice=*")
    assert f"{fqid}: removed" in page.inner_text(".notice")
    assert page.locator(f"#job-{fqid}").count() == 0
    expect(watching.locator("#conn")).to_contain_text(f"no job {fqid} in the repository", timeout=30000)
    watching.close()
    # A kill the verb refuses (the job is over) says why, in one line, and changes nothing.
    done = submitted(site.root, "--wait", "--", "/bin/true")
    page.goto(f"{site.base}/jobs/{done}/kill")
    page.click("button.danger")
    page.wait_for_url(f"**/jobs/{done}?notice=*")
    refusal = page.locator(".notice.error")
    assert refusal.count() == 1 and f"kill {done}: " in refusal.inner_text()
    assert page.locator(f'[id="status-{done}"]').inner_text() == "completed"
    # A resubmit runs it again, through the same verb as `ganga-like resubmit`.
    assert page.locator("a.button.kill").count() == 0  # a final job offers what applies
    page.click("a.button.resubmit")
    page.click("button.danger")
    page.wait_for_url(f"**/jobs/{done}?notice=*")
    assert f"resubmit {done}: now " in page.inner_text(".notice.done")
    expect(page.locator(f'[id="status-{done}"]')).to_have_text("completed", timeout=30000)
    # The cause names who asked: the web page, and from where.
    assert re.search(r"resubmit #\d+ from the web page, from 127\.0\.0\.1",
                     page.locator("#history").inner_text())
    site.shot(page, "resubmitted")


# --- other sites, bad input -----------------------------------------------------------------------


class _Evil(http.server.BaseHTTPRequestHandler):
    """Another site on another port: a page whose form posts a kill to the web view."""

    target = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = (f'<form id="f" method="post" action="{self.target}"><input name="_csrf" '
                f'value="guess"></form><script>document.getElementById("f").submit()</script>')
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


def test_a_cross_site_form_is_refused_and_kills_nothing(site, signed_in):
    context, page = signed_in
    fqid = submitted(site.root, "--name", "target", "--", "/bin/sleep", "300")
    wait_for(lambda: payloads_of(site.root, fqid), what="the payload to start")
    _Evil.target = f"{site.base}/jobs/{fqid}/kill"
    evil = http.server.HTTPServer(("127.0.0.1", 0), _Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        victim = context.new_page()  # the signed-in browser visits the other site
        victim.goto(f"http://localhost:{evil.server_address[1]}/")
        victim.wait_for_url(f"{site.base}/**")
        assert victim.locator("h1").inner_text() == "403"
        assert "needs the web view's token" in victim.inner_text("main")  # SameSite=Strict
        site.shot(victim, "cross-site-refused")
        victim.close()
    finally:
        evil.shutdown()
    # With the cookie (as a browser without SameSite would send it), the origin still fails:
    cookie = {"Cookie": f"ganga_like_web_{site.base.rsplit(':', 1)[1]}={site.token}"}
    for headers, words in [({"Origin": "http://evil.example"}, "another site"),
                           ({"Origin": site.base}, "action key")]:
        status, body = site.api(f"/api/jobs/{fqid}/kill", "POST", {**cookie, **headers},
                                data=b"_csrf=guess")
        assert status == 403 and words in body["error"], body
    status, body = site.api(f"/api/jobs/{fqid}/kill?token={site.token}", "POST", headers={},
                            data=b"")
    assert status == 400 and "wrong place" in body["error"]
    assert site.api(f"/api/jobs/{fqid}")[1]["status"] == "running"  # nothing was killed
    assert payloads_of(site.root, fqid)
    status, body = site.api(f"/api/jobs/{fqid}/kill", "POST", data=b"")  # the token's own way
    assert status == 200 and body["status"] == "killed"


@pytest.mark.parametrize("path,status,words", [
    ("/jobs/999", 404, "no job"),
    ("/api/jobs/999", 404, "no job"),
    ("/api/jobs/0.99", 404, "has 30 subjobs"),
    ("/jobs/0?status=done", 400, "unknown status 'done'"),
    ("/api/jobs/0/subjobs?page=99999999", 400, "past the last page"),
    ("/api/jobs/0/subjobs?limit=0", 400, "limit='0'"),
    ("/api/jobs?before=abc", 400, "before='abc'"),
    ("/api/jobs/0.0/peek?file=../../etc/passwd", 400, "output directory"),
    ("/api/jobs/0/peek", 409, "a master has no output of its own"),
    ("/api/nothing", 404, "no page at /api/nothing"),
])
def test_bad_input_is_one_clear_line_and_changes_nothing(site, path, status, words):
    before = site.api(f"/api/jobs/{site.scan}")[1]
    got, body = site.api(path.replace("/0", f"/{site.scan}", 1))
    assert got == status, body
    if isinstance(body, str):  # a page: its one line is the alert a person reads
        body = {"error": html.unescape(re.search(r'role="alert">([^<]*)<', body).group(1))}
    assert words in body["error"] and "\n" not in body["error"], body
    assert site.api(f"/api/jobs/{site.scan}")[1] == before


@pytest.mark.parametrize("listen,words", [
    ("nonsense", "--listen 'nonsense' is not valid; give HOST:PORT"),
    ("127.0.0.1:1", "the web view already serves on 127.0.0.1:"),
])
def test_ganga_like_web_with_a_bad_listen_is_one_line_and_changes_nothing(site, listen, words):
    result = run_gl(site.root, "web", "--listen", listen, check_clean=False)
    assert result.returncode == 1 and result.stdout == ""
    assert one_line(result.stderr).startswith("ganga-like: ") and words in result.stderr
    assert gl(site.root, "web").strip() == site.url  # the same view, the same token


def test_the_json_has_the_command_lines_shapes(site):
    shown = json.loads(gl(site.root, "show", site.scan, "--json"))
    _, api = site.api(f"/api/jobs/{site.scan}")
    assert api == {k: v for k, v in shown.items() if k != "subjob_list"}
    failed = json.loads(gl(site.root, "show", site.scan, "--json", "--status", "failed"))
    _, subjobs = site.api(f"/api/jobs/{site.scan}/subjobs?status=failed")
    assert subjobs == failed["subjob_list"] and len(subjobs) == 3
    listed = json.loads(gl(site.root, "jobs", "--json", "--all"))
    _, rows = site.api("/api/jobs?limit=200")
    final = {r["fqid"]: r for r in listed if r["status"] in ("completed", "failed", "killed")}
    assert {r["fqid"]: r for r in rows if r["fqid"] in final} == final
    assert [r["fqid"] for r in rows] == sorted((r["fqid"] for r in listed), key=int, reverse=True)
    named = json.loads(gl(site.root, "jobs", "--json", "--name", "sca*"))
    assert site.api("/api/jobs?name=sca*")[1] == named and [r["name"] for r in named] == ["scan"]
    status = gl(site.root, "service", "status")
    assert f"  web view: {site.base}/ (`ganga-like web` prints it with its token)" in status
    assert site.token not in status and site.token not in gl(site.root, "service", "status", "--json")
    assert json.loads(gl(site.root, "web", "--json")) == {
        "url": site.url, "host": "127.0.0.1", "port": int(site.base.rsplit(":", 1)[1]),
        "loopback": True}


def test_phone_width_and_dark_mode(site, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = context.new_page()
    page.goto(site.url)
    page.goto(f"{site.base}/jobs/{site.scan}")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 23, 29)"  # the dark palette, as the system asks
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, "the page (outside its tables' own scrolling) fits a phone"
    site.shot(page, "phone-dark")
    context.close()


def test_the_token_is_written_nowhere_on_disk(site, signed_in):
    """After every page, refusal and action above: no file of the root holds the token
    (the service's log records requests without their query)."""
    _context, page = signed_in
    page.goto(site.url)  # once more, a first visit with the token in its address
    found = [str(path) for path in site.root.rglob("*")
             if path.is_file() and site.token.encode() in path.read_bytes()]
    assert found == []
    assert (site.root / "service.log").stat().st_size > 0


# --- the last test: it kills the module's service ---------------------------------------------------


def test_a_sigkill_of_the_service_leaves_the_page_saying_so_and_the_next_start_a_new_token(
        site, signed_in):
    """The web view keeps nothing on disk: its token lives in the service's memory. A
    SIGKILL of the service leaves an open page reconnecting; the next service serves the
    view again only when asked (``ganga-like web``), on a new port with a new token, and
    the old one opens nothing there."""
    _context, page = signed_in
    page.goto(f"{site.base}/jobs/{site.scan}")
    expect(page.locator("#conn")).to_have_text("live", timeout=10000)
    old_pid = int((site.root / "service.lock").read_text())
    os.kill(old_pid, signal.SIGKILL)
    expect(page.locator("#conn")).to_have_text("reconnecting…", timeout=30000)
    site.shot(page, "service-killed")
    again = gl(site.root, "web").strip()  # a new service (it recovers first), a new view
    assert int((site.root / "service.lock").read_text()) != old_pid
    assert again.split("token=")[1] != site.token
    base = again.split("?")[0].rstrip("/")
    old = urllib.request.Request(base + "/api/jobs", headers={"Authorization": f"Bearer {site.token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(old, timeout=30)
    assert refused.value.code == 403
    page.goto(again)
    assert page.url == base + "/" and "scan" in page.inner_text("#jobs")
