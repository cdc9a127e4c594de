"""MTA-STS policy discovery and fetch (src/sts/) seen from outside:
`sluicectl route` asks for a recipient domain's policy the way sluiced
does, against a private unbound (the _mta-sts TXT records, the policy
hosts' addresses) and a local HTTPS server with a test CA
(peers/mtasts.py) serving good, broken, oversized, slow and redirecting
policies, 404s, the wrong media type and certificates that are not
trusted or name another host.  Only a valid policy is ever in force; the
route says which next hops it allows (wildcards included)."""
import re
import subprocess
import time

import pytest

from harness import SANITIZER_MARKS, SLUICECTL
from peers.mtasts import MtaStsServer, policy
from peers.unbound import Unbound

DOMAINS = ["good.test", "wild.test", "testing.test", "none.test",
           "broken.test", "big.test", "slow.test", "moved.test",
           "missing.test", "html.test", "wrongcert.test", "selfsigned.test",
           "twotxt.test", "badtxt.test", "notxt.test", "noaddr.test"]


def mx(domain, *hosts):
    out = []
    for i, h in enumerate(hosts):
        out += [f"{domain}. MX {10 * (i + 1)} {h}.", f"{h}. A 127.0.0.2"]
    return out


@pytest.fixture(scope="module")
def web(pki):
    with MtaStsServer(pki, DOMAINS) as server:
        server.set("good.test", policy("enforce", ["mx1.good.test"]))
        server.set("wild.test", policy("enforce", ["*.wild.test"], eol="\n"))
        server.set("testing.test", policy("testing", ["mx1.testing.test"]))
        server.set("none.test", "version: STSv1\nmode: none\nmax_age: 60\n")
        server.set("broken.test", "version: STSv1\nmode: enforce\n"
                                  "mx: mx1.broken.test\nmax_age: soon\n")
        server.set("big.test", policy("enforce", ["mx1.big.test"],
                                      extra="x: " + "y" * 70000 + "\n"))
        server.set("slow.test", policy("enforce", ["mx1.slow.test"]),
                   delay=25)
        server.set("moved.test", "", status=301,
                   location="https://mta-sts.good.test/.well-known/"
                            "mta-sts.txt")
        server.set("html.test", policy("enforce", ["mx1.html.test"]),
                   content_type="text/html")
        server.set("wrongcert.test", policy("enforce", ["mx1.wrongcert.test"]),
                   cert="wrong")
        server.set("selfsigned.test",
                   policy("enforce", ["mx1.selfsigned.test"]),
                   cert="untrusted")
        server.set("twotxt.test", policy("enforce", ["mx1.twotxt.test"]))
        server.set("badtxt.test", policy("enforce", ["mx1.badtxt.test"]))
        server.set("notxt.test", policy("enforce", ["mx1.notxt.test"]))
        yield server


@pytest.fixture(scope="module")
def dns(web):
    records = []
    for d in DOMAINS:
        records += mx(d, f"mx1.{d}", f"mx2.{d}")
        if d not in ("twotxt.test", "badtxt.test", "notxt.test",
                     "noaddr.test"):
            records += web.dns_records(d, "id1")
    records += [
        '_mta-sts.twotxt.test. TXT "v=STSv1; id=a;"',
        '_mta-sts.twotxt.test. TXT "v=STSv1; id=b;"',
        "mta-sts.twotxt.test. A 127.0.0.1",
        '_mta-sts.badtxt.test. TXT "v=STSv1; id=not-alnum;"',
        "mta-sts.badtxt.test. A 127.0.0.1",
        '_mta-sts.noaddr.test. TXT "v=STSv1; id=1;"',
        # An SPF record beside the policy's is not counted.
        '_mta-sts.good.test. TXT "v=spf1 -all"',
    ]
    with Unbound(zones=DOMAINS, records=records) as server:
        yield server


def route(tmp_path, dns, web, pki, addr, mode="Opportunistic"):
    conf = tmp_path / "sts.conf"
    conf.write_text(f"""[Transport]
QueueDirectory = {tmp_path}/q
Resolver = {dns.spec}
TrustedCAFile = {pki}/trusted.pem
[SendConnector Internet]
AddressSpaces = *
MtaStsMode = {mode}
""")
    p = subprocess.run([str(SLUICECTL), "-c", str(conf), "route", addr],
                       capture_output=True, text=True, timeout=90,
                       env={"SLUICE_MTA_STS_PORT": str(web.port),
                            "PATH": "/usr/bin:/bin"})
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    return p.stdout + p.stderr


def field(out, name):
    m = re.search(rf"^{name} *: (.*)$", out, re.M)
    return m.group(1) if m else None


def hops(out):
    return dict(re.findall(r"^MtaStsHop : (\S+): (.*)$", out, re.M))


def test_enforce_policy_fetched(tmp_path, dns, web, pki):
    before = web.hits("good.test")
    out = route(tmp_path, dns, web, pki, "u@good.test")
    assert field(out, "MtaStsTxt") == "id1", out
    assert re.search(r"^MtaSts +: fetched policy id id1, mode enforce, "
                     r"max_age 86400", out, re.M), out
    h = hops(out)
    assert h["mx1.good.test"] == "matches the policy", out
    assert h["mx2.good.test"].startswith("does not match the policy: "
                                         "skipped (enforce)"), out
    assert web.hits("good.test") == before + 1


def test_wildcard_pattern(tmp_path, dns, web, pki):
    out = route(tmp_path, dns, web, pki, "u@wild.test")
    h = hops(out)
    assert h == {"mx1.wild.test": "matches the policy",
                 "mx2.wild.test": "matches the policy"}, out


def test_testing_mode_allows_every_host(tmp_path, dns, web, pki):
    out = route(tmp_path, dns, web, pki, "u@testing.test")
    assert "mode testing" in field(out, "MtaSts"), out
    assert hops(out)["mx2.testing.test"].endswith("reported (testing)"), out


def test_mode_none_is_a_policy_that_asks_nothing(tmp_path, dns, web, pki):
    out = route(tmp_path, dns, web, pki, "u@none.test")
    assert "mode none" in field(out, "MtaSts"), out
    assert "(mode none: used)" in hops(out)["mx1.none.test"], out


@pytest.mark.parametrize("domain,why", [
    ("broken.test", "broken policy at https://mta-sts.broken.test/"
                    ".well-known/mta-sts.txt ignored: line 4: max_age is "
                    "not a number"),
    ("big.test", "larger than 65536 octets"),
    ("moved.test", "HTTP 301, a redirect (not followed"),
    ("missing.test", "HTTP 404"),
    ("html.test", "media type text/html, not text/plain"),
    ("wrongcert.test", "mta-sts.wrongcert.test"),
    ("selfsigned.test", "certificate"),
])
def test_bad_policies_are_never_used(tmp_path, dns, web, pki, domain, why):
    out = route(tmp_path, dns, web, pki, f"u@{domain}")
    text = field(out, "MtaSts")
    assert text is not None and text.startswith("no policy: "), out
    assert why in text, out
    assert hops(out) == {}, out


@pytest.mark.timeout_s(120)
def test_slow_server_times_out(tmp_path, dns, web, pki):
    started = time.monotonic()
    out = route(tmp_path, dns, web, pki, "u@slow.test")
    text = field(out, "MtaSts")
    assert text.startswith("no policy: policy fetch failed: "), out
    assert re.search(r"[Tt]imeout|timed out", text), out
    # bounded by the fetch's own limit, not by the server
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("domain,why", [
    ("notxt.test", "no _mta-sts TXT record"),
    ("twotxt.test", "several _mta-sts TXT records"),
    ("badtxt.test", "the _mta-sts TXT record is not valid"),
])
def test_txt_record_decides_whether_to_fetch(tmp_path, dns, web, pki,
                                             domain, why):
    out = route(tmp_path, dns, web, pki, f"u@{domain}")
    assert field(out, "MtaStsTxt") == "(none)", out
    assert why in field(out, "MtaSts"), out
    assert web.hits(domain) == 0


def test_policy_host_without_address(tmp_path, dns, web, pki):
    out = route(tmp_path, dns, web, pki, "u@noaddr.test")
    assert "mta-sts.noaddr.test has no address" in field(out, "MtaSts"), out


def test_mode_none_on_the_connector_looks_nothing_up(tmp_path, dns, web,
                                                     pki):
    before = web.hits("good.test")
    out = route(tmp_path, dns, web, pki, "u@good.test", mode="None")
    assert field(out, "MtaStsMode") == "None", out
    assert field(out, "MtaSts") is None, out
    assert web.hits("good.test") == before


# --- the cache, as sluicectl reads the daemon's -----------------------------
#
# sluicectl route starts from the policies cached in the queue database
# (read-only), as sluiced does at start.  Rows are written here the way
# spool_sts.c writes them, so the rules of RFC 8461 5 can be seen without
# a delivery: a cached policy under the TXT record's id is used without a
# fetch; a new id fetches; a failed fetch or a missing TXT record keeps the
# cached policy; an expired or broken row is never used.

def cache_row(tmp_path, domain, policy_id, text, fetched, max_age):
    import sqlite3
    q = tmp_path / "q"
    q.mkdir(exist_ok=True)
    db = sqlite3.connect(q / "queue.db")
    db.execute("CREATE TABLE IF NOT EXISTS mta_sts (domain TEXT PRIMARY "
               "KEY, id TEXT NOT NULL, policy BLOB NOT NULL, fetched "
               "INTEGER NOT NULL, expires INTEGER NOT NULL)")
    db.execute("INSERT OR REPLACE INTO mta_sts VALUES (?, ?, ?, ?, ?)",
               (domain, policy_id, text.encode(), fetched,
                fetched + max_age))
    db.commit()
    db.close()


def test_cached_policy_under_the_same_id_is_not_fetched(tmp_path, dns, web,
                                                        pki):
    cached = policy("enforce", ["mx2.good.test"], max_age=86400)
    cache_row(tmp_path, "good.test", "id1", cached, int(time.time()), 86400)
    before = web.hits("good.test")
    out = route(tmp_path, dns, web, pki, "u@good.test")
    assert re.search(r"^MtaSts +: cached policy id id1", out, re.M), out
    # the cached text decides, not what the server would say now
    assert hops(out)["mx2.good.test"] == "matches the policy", out
    assert web.hits("good.test") == before


def test_new_txt_id_fetches(tmp_path, dns, web, pki):
    cache_row(tmp_path, "good.test", "old",
              policy("enforce", ["mx2.good.test"]), int(time.time()), 86400)
    before = web.hits("good.test")
    out = route(tmp_path, dns, web, pki, "u@good.test")
    assert re.search(r"^MtaSts +: fetched policy id id1", out, re.M), out
    assert hops(out)["mx1.good.test"] == "matches the policy", out
    assert web.hits("good.test") == before + 1


def test_failed_fetch_keeps_the_cached_policy(tmp_path, dns, web, pki):
    # broken.test serves a broken policy under id1; the cache has id0
    cache_row(tmp_path, "broken.test", "id0",
              policy("enforce", ["mx1.broken.test"]), int(time.time()),
              86400)
    out = route(tmp_path, dns, web, pki, "u@broken.test")
    text = field(out, "MtaSts")
    assert text.startswith("cached policy id id0, mode enforce"), out
    assert "broken policy" in text and "stays in force" in text, out
    assert hops(out)["mx2.broken.test"].endswith("skipped (enforce)"), out


def test_missing_txt_keeps_the_cached_policy(tmp_path, dns, web, pki):
    cache_row(tmp_path, "notxt.test", "id9",
              policy("testing", ["mx1.notxt.test"]), int(time.time()), 86400)
    out = route(tmp_path, dns, web, pki, "u@notxt.test")
    text = field(out, "MtaSts")
    assert text.startswith("cached policy id id9, mode testing"), out
    assert "no _mta-sts TXT record" in text, out


def test_expired_or_broken_rows_are_not_used(tmp_path, dns, web, pki):
    now = int(time.time())
    cache_row(tmp_path, "notxt.test", "id9",
              policy("enforce", ["mx1.notxt.test"]), now - 100, 50)
    out = route(tmp_path, dns, web, pki, "u@notxt.test")
    assert field(out, "MtaSts").startswith("no policy"), out
    cache_row(tmp_path, "notxt.test", "id9", "mode: enforce\n", now, 86400)
    out = route(tmp_path, dns, web, pki, "u@notxt.test")
    assert field(out, "MtaSts").startswith("no policy"), out


def test_get_mtastspolicy_lists_the_cache(tmp_path, dns, web, pki):
    now = int(time.time())
    cache_row(tmp_path, "good.test", "id1",
              policy("enforce", ["mx1.good.test", "*.backup.test"]), now,
              3600)
    cache_row(tmp_path, "old.test", "x", policy("testing", ["a.test"]),
              now - 7200, 3600)
    conf = tmp_path / "sts.conf"
    conf.write_text(f"[Transport]\nQueueDirectory = {tmp_path}/q\n")

    def ctl(*args):
        return subprocess.run([str(SLUICECTL), "-c", str(conf), *args],
                              capture_output=True, text=True, timeout=30)
    p = ctl("get-mtastspolicy", "good.test")
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "Id") == "id1"
    assert field(p.stdout, "Mode") == "enforce"
    assert re.findall(r"^Mx +: (.*)$", p.stdout, re.M) == \
        ["mx1.good.test", "*.backup.test"], p.stdout
    p = ctl("get-mtastspolicy")
    assert re.findall(r"^Domain +: (.*)$", p.stdout, re.M) == \
        ["good.test", "old.test"], p.stdout
    assert "expired: not used" in p.stdout
    p = ctl("get-mtastspolicy", "nothing.test")
    assert p.returncode == 1 and "no cached MTA-STS policy" in p.stdout
