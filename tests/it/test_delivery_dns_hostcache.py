"""MX hosts' addresses kept by the resolver (issue 19, mail to many
domains), and what a question to libunbound costs.

Until libunbound ran in thread mode, every question went to its resolving
thread through a pipe and every answer came back the same way (two write()
calls each way), even when libunbound answered from its own cache; the
kept addresses saved eight writes per domain whose MX host was known.  In
event mode (issue 19, third pass) libunbound's sockets are events on the
daemon's loop: no thread, no pipe, and a question answered from a cache
costs no system call.  /proc/PID/task/PID/io counts the loop thread's
write calls (syscw): mail to
N domains with an MX host each (three questions per domain, the host's
AAAA and A going out to the DNS server) must now cost less than one write
per domain more than mail to N domains whose MX hosts' addresses are kept
already (one question each), where thread mode cost eight; and sluiced
starts no thread for libunbound.  Every domain of both rounds has an MX
host name of its own, so that both rounds open a connection per domain
(a parked connection serves another domain only on the same MX host:
test_delivery_reuse.py) and the difference is the questions alone.
Also: a kept address is given up when its TTL runs out."""
import subprocess
import time

from harness import free_port, running
from peers.postfix import SmtpSink
from peers.unbound import SIGNED_TTL, Unbound
from test_delivery import RELAY, events, pending, send, wait_for

N = 60
SINK = "127.0.0.2"


def records():
    own = [f"o{i}.hc.test. MX 10 mx{i}.hc.test." for i in range(N)] + \
        [f"mx{i}.hc.test. A {SINK}" for i in range(N)]
    # s{i} and p{i} share mxs{i}: the p round has its address kept
    # before the s round is measured
    kept = [f"{d}{i}.hc.test. MX 10 mxs{i}.hc.test."
            for d in ("s", "p") for i in range(N)] + \
        [f"mxs{i}.hc.test. A {SINK}" for i in range(N)]
    return own + kept + ["prime.hc.test. MX 10 mx.hc.test.",
                         f"mx.hc.test. A {SINK}"]


class LongTtl(Unbound):
    """The tests' unbound with an hour's TTL (records and negative
    answers): the tests' default of one second would let the kept
    addresses expire in the middle of a round."""

    def _zone_text(self, zone, records, extra=()):
        text = super()._zone_text(zone, records, extra)
        return text.replace(f"$TTL {SIGNED_TTL}\n", "$TTL 3600\n", 1) \
            .replace(f"86400 {SIGNED_TTL}\n", "86400 3600\n", 1)


def connector(port):
    return f"""
[SendConnector Internet]
AddressSpaces = *
Port = {port}
Fqdn = out.sluice.test
"""


def syscw(pid):
    """Write calls of the event loop's thread (the main one), where
    libunbound's questions are made.  Not the whole process: the spool's
    committer writes once per batch of results, and how results fall into
    batches depends on timing (under a loaded machine it moved the total
    by more than one write per domain between two identical rounds)."""
    with open(f"/proc/{pid}/task/{pid}/io") as f:
        return int(next(line for line in f if line.startswith("syscw:"))
                   .split()[1])


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:"))
                   .split()[1])


def outbound(port):
    """sluiced's connections to the sink (parked ones included)."""
    out = subprocess.run(["ss", "-Htn", "state", "established",
                          f"( dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def deliver(s, sink, port, rcpts, total):
    """Send, wait until delivered and every connection closed (parked
    connections end with QUIT a few seconds later: that is still this
    round's work), and return the write calls it took."""
    before = syscw(s.pid)
    send(s, rcpts, "many domains")
    assert wait_for(lambda: sink.count() >= total, timeout=60)
    assert wait_for(lambda: pending(s) == 0, timeout=60)
    assert wait_for(lambda: outbound(port) == 0, timeout=60, step=0.2)
    return syscw(s.pid) - before


def test_questions_cost_no_writes_and_no_thread(tmp_path):
    port = free_port()
    with LongTtl(zones=["hc.test"], records=records()) as dns, \
            SmtpSink(port, host=SINK) as sink, \
            running(tmp_path, conn=RELAY, transport={
                "Resolver": dns.spec,
                "TransientFailureRetryInterval": "1h"},
                raw_extra=connector(port)) as s:
        started = threads(s.pid)
        # the first delivery of all sets up what every later one reuses
        deliver(s, sink, port, ["a@prime.hc.test"], 1)
        # the addresses of mxs0..mxsN-1 kept (p0..pN-1 are not measured)
        deliver(s, sink, port, [f"a@p{i}.hc.test" for i in range(N)], 1 + N)
        own = deliver(s, sink, port, [f"a@o{i}.hc.test" for i in range(N)],
                      1 + 2 * N)
        shared = deliver(s, sink, port,
                         [f"a@s{i}.hc.test" for i in range(N)], 1 + 3 * N)
        assert events(s, "DEFER") == []
        assert sink.count() == 1 + 3 * N
        # two more questions per domain, answered over UDP: no write()
        assert own - shared < N, (own, shared)
        # thread mode started libunbound's resolving thread at the first
        # question
        assert threads(s.pid) == started


def test_kept_address_expires_with_its_ttl(tmp_path):
    port = free_port()
    first = ["t1.hc.test. MX 10 mx.hc.test.", "t2.hc.test. MX 10 mx.hc.test.",
             "mx.hc.test. 1 A 127.0.0.3"]
    with Unbound(zones=["hc.test"], records=first) as dns, \
            SmtpSink(port, host="127.0.0.3") as old, \
            SmtpSink(port, host=SINK) as new, \
            running(tmp_path, conn=RELAY, transport={
                "Resolver": dns.spec,
                "TransientFailureRetryInterval": "1h"},
                raw_extra=connector(port)) as s:
        send(s, ["a@t1.hc.test"], "before")
        assert wait_for(lambda: old.count() == 1, timeout=30)
        dns.reload(records=first[:2] + [f"mx.hc.test. 1 A {SINK}"])
        # the address was kept for its TTL (1 s) at most; libunbound's
        # own cache keeps it as long
        time.sleep(2.5)
        send(s, ["b@t2.hc.test"], "after")
        assert wait_for(lambda: new.count() == 1, timeout=30)
        assert old.count() == 1
        assert events(s, "DEFER") == []
