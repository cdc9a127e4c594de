"""A new destination's MTA-STS question goes out with its MX question
(issue 19, eighth pass), not once the MX answer is in: one DNS round trip
less before its first connection.

The DNS server (tests/it/peers/holddns.py) holds every MX answer until
the domain's `_mta-sts` TXT question has come, or for 3 s.  Asked
together, every domain's TXT question arrives before its MX answer has
gone out (while it is held, or even before the MX question), and nothing
is held until the 3 s run out; asked one after the
other, every MX answer would wait the 3 s and no TXT question would
overlap.  The behaviour that comes with it: a domain whose MX look-up
fails (here one that does not exist) has its TXT question asked as well,
and its mail is returned as before.  With MtaStsMode = None no TXT
question is asked at all."""
from harness import free_port, running
from peers.holddns import HoldingDns
from peers.postfix import SmtpSink
from test_delivery import RELAY, events, pending, send, wait_for

N = 8
SINK = "127.0.0.2"
ZONE = "together.test"


def connector(port, extra=""):
    return f"""
[SendConnector Internet]
AddressSpaces = *
Port = {port}
Fqdn = out.sluice.test
{extra}
"""


def test_mta_sts_question_goes_out_with_the_mx_question(tmp_path):
    port = free_port()
    domains = {f"d{i}.{ZONE}" for i in range(N)}
    missing = f"gone.nx.{ZONE}"
    with HoldingDns(ZONE, SINK, hold=3.0) as dns, \
            SmtpSink(port, host=SINK) as sink, \
            running(tmp_path, conn=RELAY, transport={
                "Resolver": dns.spec,
                "TransientFailureRetryInterval": "1h"},
                raw_extra=connector(port)) as s:
        send(s, [f"a@{d}" for d in sorted(domains)] + [f"b@{missing}"],
             "together")
        assert wait_for(lambda: sink.count() >= N, timeout=60)
        assert wait_for(lambda: pending(s) == 0, timeout=60)
        mx, txt, overlapped, late = dns.counts()
        assert mx == domains | {missing}
        # every TXT question came before its domain's MX answer went out
        assert overlapped == domains | {missing}, (overlapped, late)
        assert late == set()
        # the domain that does not exist: asked too, returned as before
        assert txt == domains | {missing}
        assert [e["recipient-address"] for e in events(s, "FAIL")] == \
            [f"b@{missing}"]
        assert events(s, "DEFER") == []
        assert sink.count() == N


def test_no_mta_sts_question_with_mta_sts_mode_none(tmp_path):
    port = free_port()
    domains = {f"n{i}.{ZONE}" for i in range(3)}
    with HoldingDns(ZONE, SINK, hold=0.5) as dns, \
            SmtpSink(port, host=SINK) as sink, \
            running(tmp_path, conn=RELAY, transport={
                "Resolver": dns.spec,
                "TransientFailureRetryInterval": "1h"},
                raw_extra=connector(port, "MtaStsMode = None")) as s:
        send(s, [f"a@{d}" for d in sorted(domains)], "no mta-sts")
        assert wait_for(lambda: sink.count() >= 3, timeout=60)
        assert wait_for(lambda: pending(s) == 0, timeout=60)
        mx, txt, overlapped, late = dns.counts()
        assert mx == domains and txt == set() and overlapped == set()
        # nobody asked: every MX answer waited for its hold to run out
        assert late == domains
        assert events(s, "DEFER") == []
