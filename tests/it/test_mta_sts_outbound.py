"""MTA-STS outbound (issue 16, RFC 8461): sluiced fetches each recipient
domain's policy from a local HTTPS server with a test CA
(peers/mtasts.py), found through the _mta-sts TXT record of a private
unbound, and applies it.  enforce: only MX hosts the policy names, with a
trusted certificate naming the host, else the mail waits with a reason
naming MTA-STS; a host outside the policy is not even connected to, and
no MAIL ever goes in plaintext.  testing: delivered as usual, the failure
reported.  DANE, where it applies to a host, wins.  The policy is cached
in the queue database (sluicectl get-mtastspolicy), survives a restart,
stays in force when a refresh fails, is fetched again when the TXT id
changes and is refreshed once half of max_age has passed."""
import time

import pytest

from harness import run_ctl, running
from peers.fakesmtp import FakeSmtp, server_context
from peers.mtasts import MtaStsServer, policy
from peers.unbound import Unbound, tlsa_rdata
from test_delivery import RELAY, events, send, states, wait_for
from test_queue_cli import ctl

CAPS = ("PIPELINING", "STARTTLS")
DOMAINS = ["enforce.test", "nomatch.test", "untrusted.test", "strip.test",
           "testing.test", "both.test", "cached.test", "fresh.test"]


def mx_records(domain, hosts):
    return [f"{domain}. 1 IN MX {10 * (i + 1)} {h}."
            for i, h in enumerate(hosts)]


def records(web, ids=None):
    ids = ids or {}
    out = []
    for d in DOMAINS:
        out += web.dns_records(d, ids.get(d, "id1"))
    # the first MX is never in the policies below: it must be skipped
    out += mx_records("enforce.test", ["mx.other.test", "mx.sluice.test"])
    out += mx_records("nomatch.test", ["mx.other.test"])
    out += mx_records("untrusted.test", ["self.sluice.test"])
    out += mx_records("strip.test", ["strip.sluice.test"])
    out += mx_records("testing.test", ["self.sluice.test"])
    out += mx_records("both.test", ["mx.dane.test"])
    out += mx_records("cached.test", ["mx.other.test", "mx.sluice.test"])
    out += mx_records("fresh.test", ["mx.sluice.test"])
    return out


def host_records(good, bad, strip):
    """Addresses of the MX hosts: each name points at the next hop that
    behaves as its name says (distinct loopback addresses)."""
    return [f"mx.sluice.test. A {good.host}",
            f"mx.other.test. A {good.host}",
            f"self.sluice.test. A {bad.host}",
            f"strip.sluice.test. A {strip.host}"]


def policies(web):
    web.set("enforce.test", policy("enforce", ["mx.sluice.test"]))
    web.set("nomatch.test", policy("enforce", ["*.sluice.test"]))
    web.set("untrusted.test", policy("enforce", ["*.sluice.test"]))
    web.set("strip.test", policy("enforce", ["*.sluice.test"]))
    web.set("testing.test", policy("testing", ["mx.sluice.test"]))
    web.set("both.test", policy("enforce", ["mx.sluice.test"]))
    web.set("cached.test", policy("enforce", ["mx.sluice.test"]))
    web.set("fresh.test", policy("enforce", ["mx.sluice.test"],
                                 max_age=10))


def connector(port):
    return f"""
[SendConnector Internet]
AddressSpaces = *.test
Port = {port}
ProtocolLoggingLevel = Verbose
"""


def start_fakes(pki):
    """Three next hops on one port, on three loopback addresses: a good
    certificate, a self-signed one, STARTTLS stripped."""
    good = FakeSmtp(host="127.0.0.1", capabilities=CAPS,
                    tls=server_context(pki, "server"))
    good.start()
    bad = FakeSmtp(host="127.0.0.2", port=good.port, capabilities=CAPS,
                   tls=server_context(pki, "self"))
    strip = FakeSmtp(host="127.0.0.3", port=good.port, capabilities=CAPS,
                     tls=server_context(pki, "server"), starttls="strip")
    return good, bad, strip


@pytest.mark.timeout_s(180)
def test_mta_sts_outbound(tmp_path, pki):
    server = tlsa_rdata(pki / "server.pem")
    with MtaStsServer(pki, DOMAINS) as web:
        policies(web)
        good, bad, strip = start_fakes(pki)
        with good, bad, strip:
            port = good.port
            # DANE for both.test's MX: a signed zone of its own
            with Unbound(zones=DOMAINS + ["other.test", "sluice.test"],
                         records=records(web) +
                         host_records(good, bad, strip),
                         signed={"dane.test": [
                             f"mx.dane.test. A {good.host}",
                             f"_{port}._tcp.mx.dane.test. TLSA {server}"]}
                         ) as dns, \
                    running(tmp_path, conn=RELAY, transport={
                        "Resolver": dns.spec,
                        "DnssecTrustAnchorFile": str(dns.anchor_path),
                        "TrustedCAFile": f"{pki}/trusted.pem",
                        "TransientFailureRetryInterval": "1h"},
                        raw_extra=connector(port),
                        env={"SLUICE_MTA_STS_PORT": str(web.port)}) as s:
                run_scenarios(s, web, dns, good, bad, strip)


def rcpt(d):
    return f"bob@{d}"


def run_scenarios(s, web, dns, good, bad, strip):
    first = ["enforce.test", "nomatch.test", "untrusted.test",
             "strip.test", "testing.test", "both.test", "cached.test"]
    send(s, [rcpt(d) for d in first], "mta-sts outbound")
    assert wait_for(lambda: all(r["attempts"] >= 1 or r["status"] != 0
                                for r in s.recipients()), timeout=60), \
        states(s)
    st = states(s)

    # enforce: the host outside the policy is skipped, the one inside
    # with a trusted certificate naming it gets the mail
    assert st[rcpt("enforce.test")][0] == 1, st
    assert st[rcpt("testing.test")][0] == 1, st  # testing never stops
    assert st[rcpt("both.test")][0] == 1, st     # DANE wins
    assert st[rcpt("cached.test")][0] == 1, st
    reasons = {
        "nomatch.test": "MTA-STS enforce: mx.other.test does not match "
                        "the policy of nomatch.test (id id1)",
        "untrusted.test": "MTA-STS enforce: certificate chain not trusted",
        "strip.test": "MTA-STS enforce: TLS is required and the next hop "
                      "does not offer STARTTLS",
    }
    for d, why in reasons.items():
        status, err, _ = st[rcpt(d)]
        assert status == 0 and why in err, (d, st[rcpt(d)])

    assert wait_for(lambda: len(events(s, "SEND")) == 4)
    sent = {e["recipient-address"]: e["tls"] for e in events(s, "SEND")}
    assert sent[rcpt("enforce.test")].startswith(
        "tls=sts-enforce:verified;TLSv1"), sent
    assert sent[rcpt("both.test")].startswith("tls=dane:verified;"), sent
    # testing: delivered, and the failed check said (reported)
    assert sent[rcpt("testing.test")].startswith(
        "tls=sts-testing:MxNotInPolicy;") or \
        sent[rcpt("testing.test")].startswith(
            "tls=sts-testing:Untrusted;"), sent
    assert "reported, not enforced" in s.stderr()

    # from the peers' side: nothing outside TLS, nothing to mx.other.test
    # for enforce.test (the good host is mx.other.test's address too, so
    # count its sessions: one per delivered domain routed there)
    for fake in (good, bad, strip):
        for sess in fake.sessions:
            assert "MAIL" not in sess.verbs(tls=False), sess
    assert len(bad.messages) == 1  # testing.test only
    assert strip.messages == []

    # sluicectl test-tls: the policy, whether it names the host, and the
    # verdict the daemon reached
    p = run_ctl("-c", s.conf_path, "test-tls", f"mx.other.test:{good.port}",
                "--domain", "enforce.test", "--connector", "Internet",
                timeout=90, env={"SLUICE_MTA_STS_PORT": str(web.port)})
    assert "MtaSts       : " in p.stdout and \
        "mx.other.test does not match the policy" in p.stdout, p.stdout
    assert "Could deliver: no (MTA-STS enforce: mx.other.test does not " \
           "match the policy of enforce.test" in p.stdout, p.stdout
    p = run_ctl("-c", s.conf_path, "test-tls", f"mx.sluice.test:{good.port}",
                "--domain", "enforce.test", "--connector", "Internet",
                timeout=90, env={"SLUICE_MTA_STS_PORT": str(web.port)})
    assert "mx.sluice.test matches the policy" in p.stdout, p.stdout
    assert "policy id id1 (TXT id id1), mode enforce" in p.stdout, p.stdout
    assert "Could deliver: yes (sts-enforce met)" in p.stdout, p.stdout

    # the cache, in the queue database
    p = ctl(s, "get-mtastspolicy", "enforce.test")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Mode      : enforce" in p.stdout
    assert "Mx        : mx.sluice.test" in p.stdout

    # a restart with the policy server broken: the cached policy stays in
    # force (the host outside it is still refused), and is not refetched
    # under the same id
    web.set("cached.test", "HTTP broken", status=500)
    before = web.hits("cached.test")
    s.restart()
    send(s, [rcpt("cached.test")], "cached after restart")
    assert wait_for(lambda: len([e for e in events(s, "SEND")
                                 if e["recipient-address"] ==
                                 rcpt("cached.test")]) == 2, timeout=60)
    assert web.hits("cached.test") == before

    # a new TXT id: fetched again; the broken answer keeps the cached
    # policy (and says so).  A parked connection would take the next
    # message without a new look-up: let it end first.
    good.wait_closed(timeout=30)
    dns.reload(records=records(web, {"cached.test": "id2"}) +
               host_records(good, bad, strip))
    ctl(s, "retry", "cached.test")
    send(s, [rcpt("cached.test")], "cached after id change")
    assert web.wait_hits("cached.test", before + 1, timeout=30) > before
    assert s.wait_stderr(r"cached\.test: policy fetch failed: .*HTTP 500;"
                         r" the cached policy is kept", timeout=20)
    assert wait_for(lambda: len([e for e in events(s, "SEND")
                                 if e["recipient-address"] ==
                                 rcpt("cached.test")]) == 3, timeout=60)

    # refresh before expiry: fresh.test's policy lives 10 s; used again
    # after half of that it is fetched once more, in the background
    send(s, [rcpt("fresh.test")], "fresh 1")
    assert web.wait_hits("fresh.test", 1, timeout=30) == 1
    time.sleep(5.5)  # half of max_age must pass on the clock: no other way
    good.wait_closed(timeout=30)
    ctl(s, "retry", "fresh.test")
    send(s, [rcpt("fresh.test")], "fresh 2")
    assert web.wait_hits("fresh.test", 2, timeout=30) >= 2
    assert s.wait_stderr(r"fresh\.test: refreshing policy id id1",
                         timeout=20)
