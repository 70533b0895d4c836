"""The pages' pieces alone: every value escaped, the counts bar, the hosts table, the pager.
Pure (no service): tests/web/test_browser.py shows the same pages in Chromium."""

from __future__ import annotations

import re

from ganga_like.web import html, pages
from ganga_like.web.query import listing
from ganga_like.web.reads import Page

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def row(**values: object) -> dict[str, object]:
    base: dict[str, object] = {"fqid": "7", "name": "sim", "status": "running",
                               "subjobs": {"running": 3, "failed": 1}, "backend": "Local",
                               "created": "2026-12-06T07:00:00+00:00", "runtime_s": 65.0}
    return {**base, **values}


def test_every_value_is_escaped():
    shown = pages.job_row(row(name=HOSTILE, backend=HOSTILE))
    assert "<script>" not in shown and "<img" not in shown
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in shown
    sub = pages.subjob_row({"fqid": "7.1", "status": "failed", "exit_code": 3, "backend_detail": "",
                            "reason": HOSTILE, "args": [HOSTILE]})
    assert "<script>" not in sub and "<img" not in sub
    assert "<script>" not in pages.error_page(400, HOSTILE)
    assert "<script>" not in pages.hosts_page([{"host": HOSTILE}])


def test_the_counts_bar_spans_the_whole_width_in_the_master_rules_order():
    bar = html.counts_bar({"completed": 6, "running": 3, "failed": 1}, "bar-7")
    widths = [float(w) for w in re.findall(r'width="([0-9.]+)"', bar)]
    assert abs(sum(widths) - 1000) < 0.5
    assert re.findall(r'class="st-(\w+)"', bar) == ["running", "failed", "completed"]
    assert 'aria-label="running:3 failed:1 completed:6"' in bar
    assert 'id="bar-7"' in bar and "style=" not in bar  # no inline style (the page's CSP)


def test_the_hosts_table_takes_its_columns_from_the_records():
    shown = pages.hosts_page([{"host": "n1", "status": "Ready", "labels": ["gpu", "x86_64"]},
                              {"host": "n2", "status": "Running", "subjob": "3.1"}])
    assert re.findall(r"<th>(\w+)</th>", shown) == ["host", "status", "labels", "subjob"]
    assert "gpu, x86_64" in shown
    assert "once the service can list hosts" in pages.hosts_page(None)
    assert "no Hosts actor" in pages.hosts_page(None, "no Hosts actor")


def test_the_subjob_pager_counts_pages_and_a_filter_goes_on_after_where_it_stopped():
    rows = [{"id": i, "fqid": f"7.{i}", "status": "new", "exit_code": None,
             "backend_detail": "", "reason": "", "args": []} for i in range(50, 100)]
    shown = pages.subjob_section("7", Page(rows, 1000, 50, 99), listing({"page": "2"}))
    assert "page 2 of 20" in shown and "page=1" in shown and "page=3" in shown
    assert "subjobs 7.50 to 7.99 of 1000" in shown
    failed = pages.subjob_section("7", Page(rows[:3], 40, 800, 812, stopped_early=True),
                                  listing({"status": "failed"}))
    assert "after=812" in failed and "Search on (read 800)" in failed


def test_why_names_waiting_subjobs_as_ranges_and_rows_quote_arguments_as_a_shell_would():
    report = {"id": "3", "summary": "3 is running: 900 of 1000 subjobs wait", "reasons": [
        {"code": "ConcurrencyLimit", "note": "2 reached", "count": 900,
         "subjobs": [f"3.{i}" for i in range(100, 1000)]}]}
    shown = pages.why_page(report)
    assert "3.100-3.999" in shown and "3.101" not in shown
    sub = pages.subjob_row({"fqid": "3.1", "status": "new", "exit_code": None,
                            "backend_detail": "", "reason": "", "args": ["-c", "sleep 0.2", "1"]})
    assert "-c &#x27;sleep 0.2&#x27; 1" in sub
