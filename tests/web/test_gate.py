"""The web view's gate and query checks, alone: who gets in, what a bad parameter says.

Pure: no service, no browser (tests/web/test_browser.py meets the same rules through a
real service and Chromium)."""

from __future__ import annotations

import pytest

from ganga_like.errors import WebRefused
from ganga_like.web import auth, query
from ganga_like.web.auth import Gate, Request

TOKEN = auth.new_token()
GATE = Gate(TOKEN, 8123)
OWN = {"Origin": "http://127.0.0.1:8123"}


def ask(method="GET", host="127.0.0.1:8123", query_token=None, cookie=None, headers=None,
        form=None) -> bool:
    cookies = {} if cookie is None else {GATE.cookie: cookie}
    return GATE.admit(Request(method, host, query_token, cookies, headers or {}, form or {}))


def refused(**kwargs) -> WebRefused:
    with pytest.raises(WebRefused) as caught:
        ask(**kwargs)
    message = str(caught.value)
    assert "\n" not in message and ";" in message  # what was wrong; what is valid
    return caught.value


def test_tokens_are_long_random_and_new_each_start():
    assert len(TOKEN) >= 43 and auth.new_token() != TOKEN


def test_the_first_visit_signs_in_and_the_cookie_then_suffices():
    assert ask(query_token=TOKEN) is True  # the caller sets the cookie and redirects
    assert ask(cookie=TOKEN) is False
    assert ask(headers={"Authorization": f"Bearer {TOKEN}"}) is False


@pytest.mark.parametrize("kwargs,status,words", [
    ({}, 403, "needs the web view's token"),
    ({"cookie": TOKEN[:-1] + "x"}, 403, "needs the web view's token"),
    ({"query_token": "guess"}, 403, "not this web view's"),
    ({"headers": {"Authorization": "Bearer guess"}}, 403, "not this web view's"),
    ({"host": "evil.example:8123", "cookie": TOKEN}, 403, "loopback only"),
    ({"method": "POST", "query_token": TOKEN}, 400, "wrong place"),
    ({"method": "POST", "cookie": TOKEN, "form": {"token": TOKEN}}, 400, "wrong place"),
    ({"method": "POST", "cookie": TOKEN, "form": {"_csrf": GATE.csrf}}, 403, "another site"),
    ({"method": "POST", "cookie": TOKEN, "headers": {"Origin": "http://evil.example"},
      "form": {"_csrf": GATE.csrf}}, 403, "another site (http://evil.example)"),
    ({"method": "POST", "cookie": TOKEN, "headers": {"Origin": "null"},
      "form": {"_csrf": GATE.csrf}}, 403, "another site"),
    ({"method": "POST", "cookie": TOKEN, "headers": OWN}, 403, "action key"),
    ({"method": "POST", "cookie": TOKEN, "headers": OWN, "form": {"_csrf": "x"}}, 403, "action key"),
])
def test_refusals_are_one_line_with_the_way_in(kwargs, status, words):
    exc = refused(**kwargs)
    assert exc.fields["status"] == status and words in str(exc)


def test_a_change_from_the_views_own_page_passes():
    assert ask("POST", cookie=TOKEN, headers=OWN, form={"_csrf": GATE.csrf}) is False
    referer = {"Referer": "http://127.0.0.1:8123/jobs/3/kill"}  # a browser without Origin
    assert ask("POST", cookie=TOKEN, headers=referer, form={"_csrf": GATE.csrf}) is False
    # A script's Bearer header cannot come from another site's page: no Origin needed.
    assert ask("POST", headers={"Authorization": f"Bearer {TOKEN}"}) is False


def test_the_action_key_is_not_the_token_and_cookies_differ_by_port():
    assert GATE.csrf != TOKEN and TOKEN not in GATE.csrf
    assert Gate(TOKEN, 8124).cookie != GATE.cookie


def test_loopback_names_pass_and_another_address_only_when_opened():
    for host in ("localhost:8123", "[::1]:8123", "127.0.0.1:8123"):
        assert ask(host=host, cookie=TOKEN) is False
    opened = Gate(TOKEN, 8123, loopback=False)
    request = Request("GET", "myhost.example:8123", None, {opened.cookie: TOKEN}, {})
    assert opened.admit(request) is False
    with pytest.raises(WebRefused):  # never without the token
        opened.admit(Request("GET", "myhost.example:8123", None, {}, {}))


@pytest.mark.parametrize("args,words", [
    ({"status": "done"}, ["unknown status 'done'", "completed", "failed"]),
    ({"status": "failed,"}, ["unknown status ''"]),
    ({"page": "0"}, ["page='0'", "1 or more"]),
    ({"page": "x"}, ["page='x'", "whole number"]),
    ({"page": "9" * 40}, ["page=", "whole number"]),
    ({"after": "-1"}, ["after='-1'", "0 or more"]),
    ({"limit": "1000"}, ["limit='1000'", "at most 200"]),
    ({"name": "a\nb"}, ["name=", "one line"]),
    ({"sort": "id"}, ["unknown parameter 'sort'", "status, name, page"]),
])
def test_bad_parameters_are_one_line_naming_what_is_valid(args, words):
    with pytest.raises(WebRefused) as caught:
        query.listing(args)
    message = str(caught.value)
    assert caught.value.fields["status"] == 400 and "\n" not in message
    assert all(word in message for word in words), message


def test_good_parameters():
    q = query.listing({"status": "failed,killed", "name": "sim*", "after": "40", "limit": "10"})
    assert q.statuses == ("failed", "killed") and q.name == "sim*" and q.after == 40
    assert q.limit == 10 and q.filtered
    assert not query.listing({}).filtered and query.listing({}).limit == query.DEFAULT_LIMIT
