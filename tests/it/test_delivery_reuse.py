"""Reuse of a parked connection by another destination (issue 19): many
domains whose MX is one host share its connections, as Postfix's
connection cache by server address does, but only where a new connection
for the other domain would have been made the same way: the same MX host
name and address among that domain's most preferred next hops, the same
send connector, and no DANE or MTA-STS for either domain.

The daemon parks connections for 300 s here (SLUICE_TEST_PARK_SECONDS, a
hook of the test build) and each message is sent once the one before it
was delivered, so that whether a connection was reused depends on the
rule alone, never on timing.  What is asserted is counted: the sessions
each next hop saw, the messages, the tracking log's session of each
delivery and the SmtpSend protocol log's notes."""
import pytest

from harness import Sluice, running
from peers.fakesmtp import FakeSmtp, server_context
from peers.mtasts import MtaStsServer, policy
from peers.unbound import Unbound, tlsa_rdata
from test_delivery import RELAY, events, pending, send, wait_for
from test_delivery_slots import YIELD, most_open, notes, send_rows
from test_requiretls import VALIDATED, rcpt_state, settled, submit
from test_tls import tls_conf

PARK = {"SLUICE_TEST_PARK_SECONDS": "300"}
REUSED = "reused for "
N = 30  # domains on one MX host


def connector(port):
    return f"""
[SendConnector Internet]
AddressSpaces = *.test
Port = {port}
Fqdn = out.sluice.test
ProtocolLoggingLevel = Verbose
"""


def deliver_one(s, rcpt):
    """Send one message and wait until it left the queue delivered."""
    def sent():
        return [e for e in events(s, "SEND")
                if e["recipient-address"] == rcpt]

    send(s, [rcpt], f"to {rcpt}")
    assert wait_for(lambda: pending(s) == 0 and sent(), timeout=60), \
        events(s)
    (e,) = sent()
    return e


def test_domains_on_one_mx_share_its_connection(tmp_path):
    """N domains with MX mx.reuse.test: one connection serves them all.
    A domain whose MX has another name for the same address gets its own;
    a domain for which mx.reuse.test is only the backup does not take it
    while its best MX answers (it is tried first, and refuses)."""
    # room for a session per domain: without reuse the count says so
    with FakeSmtp(host="127.0.0.2", capabilities=("PIPELINING",),
                  max_sessions=2 * N) as mx:
        recs = [f"r{i}.reuse.test. MX 10 mx.reuse.test." for i in range(N)]
        recs += ["mx.reuse.test. A 127.0.0.2",
                 "o1.other.test. MX 10 mx.other.test.",
                 "o2.other.test. MX 10 mx.other.test.",
                 "mx.other.test. A 127.0.0.2",
                 # its best MX refuses connections: the backup is used,
                 # by a connection of its own
                 "backup.other.test. MX 10 mx.down.other.test.",
                 "backup.other.test. MX 20 mx.reuse.test.",
                 "mx.down.other.test. A 127.0.0.9"]
        with Unbound(zones=["reuse.test", "other.test"], records=recs) \
                as dns, \
                running(tmp_path, conn=RELAY, env=PARK, transport={
                    "Resolver": dns.spec,
                    "TransientFailureRetryInterval": "1h"},
                    raw_extra=connector(mx.port)) as s:
            rcpts = [f"bob@r{i}.reuse.test" for i in range(N)]
            sent = [deliver_one(s, r) for r in rcpts]
            # one connection, every message once, to its own recipient
            assert len(mx.sessions) == 1, len(mx.sessions)
            got = sorted(r for m in mx.messages for r in m.rcpts)
            assert got == sorted(rcpts)
            assert len({e["source-context"] for e in sent}) == 1
            assert {e["server-hostname"] for e in sent} == {"mx.reuse.test"}
            rows = send_rows(s)
            reused = notes(rows, REUSED)
            assert len(reused) == N - 1, reused
            assert {n[3].split()[2].rstrip(":") for n in reused} == \
                {f"r{i}.reuse.test" for i in range(1, N)}

            # another MX name, same address: a connection of its own,
            # which the next domain on that name takes
            o1 = deliver_one(s, "bob@o1.other.test")
            assert len(mx.sessions) == 2
            o2 = deliver_one(s, "bob@o2.other.test")
            assert len(mx.sessions) == 2
            assert o1["source-context"] == o2["source-context"]
            assert o1["source-context"] != sent[0]["source-context"]
            assert o2["server-hostname"] == "mx.other.test"

            # mx.reuse.test is backup.other.test's backup only: its best
            # MX is tried first (refused), then a new connection
            b = deliver_one(s, "bob@backup.other.test")
            assert len(mx.sessions) == 3
            assert b["server-hostname"] == "mx.reuse.test"
            assert b["source-context"] not in (sent[0]["source-context"],
                                               o1["source-context"])
            assert len(notes(send_rows(s), REUSED)) == N


def test_waiting_domains_take_parked_connections_within_the_cap(tmp_path):
    """MaxOutboundConnections 2 and twelve domains on one MX host in one
    message: the two connections open serve all twelve, one after the
    other.  A connection that parks while domains wait for a slot goes on
    to one of them rather than QUIT to give its slot away; the cap holds
    (never more than two open), and every message arrives once."""
    with FakeSmtp(host="127.0.0.2", capabilities=("PIPELINING",),
                  max_sessions=16) as peer, \
            Unbound(zones=["burst.test"],
                    records=[f"b{i}.burst.test. MX 10 mx.burst.test."
                             for i in range(12)] +
                    ["mx.burst.test. A 127.0.0.2"]) as dns, \
            running(tmp_path, conn=RELAY, env=PARK, transport={
                "Resolver": dns.spec, "MaxOutboundConnections": 2,
                "TransientFailureRetryInterval": "1h"},
                raw_extra=connector(peer.port)) as s:
        rcpts = [f"bob@b{i}.burst.test" for i in range(12)]
        send(s, rcpts, "burst")
        assert wait_for(lambda: pending(s) == 0 and
                        len(events(s, "SEND")) == 12, timeout=60), \
            events(s)
        got = sorted(r for m in peer.messages for r in m.rcpts)
        assert got == sorted(rcpts)
        rows = send_rows(s)
        assert most_open(rows) <= 2
        assert len(peer.sessions) <= 2, len(peer.sessions)
        assert not notes(rows, YIELD)
        assert len(notes(rows, REUSED)) == 12 - len(peer.sessions)


STS_DOMAINS = ["sts1.test", "sts2.test"]


def mx(domain, host):
    return f"{domain}. 1 IN MX 10 {host}."


@pytest.mark.timeout_s(180)
def test_dane_and_mta_sts_domains_never_share(tmp_path, pki):
    """Plain domains share connections to mx.sluice.test; a domain with an
    MTA-STS policy naming that host never takes theirs nor gives its own,
    and neither does a domain whose MX has TLSA records (DANE)."""
    server = tlsa_rdata(pki / "server.pem")
    with MtaStsServer(pki, STS_DOMAINS) as web, \
            FakeSmtp(host="127.0.0.1", capabilities=("PIPELINING",),
                     tls=server_context(pki, "server"),
                     max_sessions=32) as good:
        for d in STS_DOMAINS:
            web.set(d, policy("enforce", ["mx.sluice.test"]))
        recs = [mx(d, "mx.sluice.test") for d in
                ["p1.test", "p2.test", "p3.test", "p4.test"] +
                STS_DOMAINS]
        recs += [mx("pd1.test", "mx.dane.test"),
                 mx("pd2.test", "mx.dane.test"),
                 f"mx.sluice.test. A {good.host}"]
        for d in STS_DOMAINS:
            recs += web.dns_records(d, "id1")
        zones = ["p1.test", "p2.test", "p3.test", "p4.test", "pd1.test",
                 "pd2.test", "sluice.test"] + STS_DOMAINS
        with Unbound(zones=zones, records=recs, signed={"dane.test": [
                mx("dd1.dane.test", "mx.dane.test"),
                mx("dd2.dane.test", "mx.dane.test"),
                f"mx.dane.test. A {good.host}",
                f"_{good.port}._tcp.mx.dane.test. TLSA {server}"]}) as dns, \
                running(tmp_path, conn=RELAY, env={
                    **PARK, "SLUICE_MTA_STS_PORT": str(web.port)},
                    transport={
                        "Resolver": dns.spec,
                        "DnssecTrustAnchorFile": str(dns.anchor_path),
                        "TrustedCAFile": f"{pki}/trusted.pem",
                        "TransientFailureRetryInterval": "1h"},
                    raw_extra=connector(good.port)) as s:
            def ctx(rcpt):
                return deliver_one(s, rcpt)["source-context"]

            # the control: two plain domains share one connection
            p1 = ctx("bob@p1.test")
            assert ctx("bob@p2.test") == p1
            assert len(good.sessions) == 1
            # MTA-STS: neither takes the plain connection nor each
            # other's, and the next plain domain still takes the plain one
            sts1 = ctx("bob@sts1.test")
            sts2 = ctx("bob@sts2.test")
            assert len({p1, sts1, sts2}) == 3
            assert ctx("bob@p3.test") == p1
            assert len(good.sessions) == 3
            # DANE on mx.dane.test (its address is secure, so DANE
            # applies to every domain whose MX it is, pd1 and pd2 too):
            # none of them shares a connection with anyone
            seen = {p1, sts1, sts2}
            on_dane = ["pd1.test", "dd1.dane.test", "dd2.dane.test",
                       "pd2.test"]
            for d in on_dane:
                c = ctx(f"bob@{d}")
                assert c not in seen, d
                seen.add(c)
            dane = [e["tls"] for e in events(s, "SEND")
                    if e["recipient-address"].split("@")[1] in on_dane]
            assert len(dane) == 4
            assert all(t.startswith("tls=dane:verified") for t in dane), \
                dane
            # and the plain domain on mx.sluice.test, still its own
            assert ctx("bob@p4.test") == p1
            rows = send_rows(s)
            assert len(notes(rows, REUSED)) == 3
            for n in notes(rows, REUSED):
                assert n[3].split()[2].rstrip(":") in (
                    "p2.test", "p3.test", "p4.test"), n
            # every message arrived exactly once
            got = sorted(r for m in good.messages for r in m.rcpts)
            assert got == sorted(
                f"bob@{d}" for d in ["p1.test", "p2.test", "p3.test",
                                     "p4.test", "pd1.test", "pd2.test",
                                     "dd1.dane.test", "dd2.dane.test"] +
                STS_DOMAINS)



@pytest.mark.timeout_s(120)
def test_requiretls_is_checked_on_a_reused_connection(tmp_path, pki):
    """REQUIRETLS is decided per message, on the connection it goes over:
    over a connection taken over from another domain, a REQUIRETLS message
    is returned with 5.7.30 where the policy does not validate the next
    hop (the opportunistic connector), and sent with the parameter, inside
    TLS, where it does (CertificateValidation), as over a new one."""
    fake = FakeSmtp(host="127.0.0.1", capabilities=("PIPELINING",
                                                     "REQUIRETLS"),
                    tls=server_context(pki, "server"), max_sessions=8)
    with fake, Unbound(zones=["opp.test", "val.test", "sluice.test"],
                       records=[mx(d, "mx.sluice.test") for d in
                                ["o1.opp.test", "o2.opp.test",
                                 "v1.val.test", "v2.val.test"]] +
                       [f"mx.sluice.test. A {fake.host}"]) as dns:
        conf = tls_conf(pki, PermissionGroups="ExchangeServers",
                        AuthMechanism="Tls, ExternalAuthoritative")
        conf["transport"] = dict(conf["transport"], Resolver=dns.spec,
                                 TransientFailureRetryInterval="1h")
        conf["raw_extra"] += f"""
[SendConnector Opp]
AddressSpaces = *.opp.test
Port = {fake.port}
ProtocolLoggingLevel = Verbose

[SendConnector Validated]
AddressSpaces = *.val.test
Port = {fake.port}
ProtocolLoggingLevel = Verbose
{VALIDATED}
"""
        s = Sluice(tmp_path / "sender", env=PARK, **conf)
        s.start()
        try:
            # a plain message parks a connection for each connector
            for d in ["o1.opp.test", "v1.val.test"]:
                submit(s, pki, f"bob@{d}", f"plain to {d}",
                       requiretls=False)
                assert settled(s, f"bob@{d}")
                assert rcpt_state(s, f"bob@{d}")[0] == 1
            assert len(fake.sessions) == 2
            # REQUIRETLS to the next domain of each: the parked
            # connection of its own connector is taken over
            for d in ["o2.opp.test", "v2.val.test"]:
                submit(s, pki, f"bob@{d}", f"requiretls to {d}")
                assert settled(s, f"bob@{d}")
            assert len(fake.sessions) == 2
            assert len(notes(send_rows(s), REUSED)) == 2
            st, why = rcpt_state(s, "bob@o2.opp.test")
            assert st == 2 and "5.7.30" in why and "does not validate" \
                in why, why
            assert rcpt_state(s, "bob@v2.val.test")[0] == 1
            sent = {r for m in fake.messages for r in m.rcpts}
            assert sent == {"bob@o1.opp.test", "bob@v1.val.test",
                            "bob@v2.val.test"}
            (m,) = [m for m in fake.messages
                    if m.rcpts == ["bob@v2.val.test"]]
            assert m.tls and "REQUIRETLS" in m.mail_params.upper().split()
            s.stop()
        finally:
            s.kill9()
