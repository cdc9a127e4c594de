"""Delivery against real next hops and under the administrator's hand:
a private Postfix instance as the next hop (plain and STARTTLS),
Postfix's smtp-sink answering 4xx/5xx (-r/-f), at-least-once delivery
across kill -9 against a counting sink, and the queue commands of
sluicectl (suspend, resume, retry, remove) against the running daemon."""
import subprocess
import time

from harness import SLUICECTL, free_port, running
from peers.fakesmtp import CountingSink, FakeSmtp
from peers.postfix import Postfix, SmtpSink
from test_delivery import (FAST, RELAY, events, mailbox, pending, send,
                           smarthost, states, wait_for)


def ctl(s, *args):
    return subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                          capture_output=True, text=True, timeout=30)


def test_postfix_as_next_hop(tmp_path):
    pf = Postfix(free_port(), mailbox_domains=["remote.test"],
                 mynetworks=()).start()
    try:
        with running(tmp_path, conn=RELAY,
                     raw_extra=smarthost(pf.port)) as s:
            send(s, ["bob@remote.test", "carol@remote.test"], "to postfix")
            (text,) = pf.wait_delivered("bob@remote.test", timeout=20)
            assert b"Subject: to postfix" in text
            pf.wait_log(r"to=<carol@remote.test>.*status=sent", timeout=20)
            assert wait_for(lambda: pending(s) == 0)
            # Postfix refuses relaying for other domains (454 4.7.1):
            # deferred with Postfix's reason, not lost, not bounced
            send(s, ["eve@elsewhere.test"], "refused by postfix")
            assert wait_for(lambda: events(s, "DEFER"))
            st = states(s)["eve@elsewhere.test"]
            assert st[0] == 0 and "454 4.7.1" in st[1], st
    finally:
        pf.close()


def test_postfix_next_hop_with_starttls(tmp_path, pki):
    pf = Postfix(free_port(), mailbox_domains=["remote.test"], mynetworks=(),
                 tls={"cert": f"{pki}/server.pem", "key": f"{pki}/server.key",
                      "level": "may"}).start()
    try:
        with running(tmp_path, conn=RELAY,
                     raw_extra=smarthost(pf.port)) as s:
            send(s, ["bob@remote.test"], "over tls")
            pf.wait_delivered("bob@remote.test", timeout=20)
            pf.wait_log(r"TLS connection established from", timeout=20)
            assert wait_for(lambda: events(s, "SEND"))
            assert events(s, "SEND")[0]["tls"].startswith(
                "tls=opportunistic:encrypted;TLSv1")
    finally:
        pf.close()


def test_smtp_sink_soft_and_hard_rejects(tmp_path):
    hard = SmtpSink(free_port(), options=["-f", "RCPT"]).start()
    soft = SmtpSink(free_port(), options=["-r", "RCPT"]).start()
    extra = (smarthost(hard.port, name="Hard", spaces="hard.test") +
             smarthost(soft.port, name="Soft", spaces="soft.test"))
    try:
        with running(tmp_path, conn=RELAY, transport={
                "TransientFailureRetryInterval": "1h"},
                raw_extra=extra) as s:
            send(s, ["x@hard.test", "y@soft.test"], "rejects")
            assert wait_for(lambda: events(s, "FAIL") and events(s, "DEFER"))
            st = states(s)
            assert st["x@hard.test"][0] == 2 and \
                st["x@hard.test"][1].startswith("5")
            assert st["y@soft.test"][0] == 0 and \
                st["y@soft.test"][1].startswith("4")
            assert wait_for(lambda: mailbox(s, "alice"))
    finally:
        hard.stop()
        soft.stop()


def test_kill9_during_delivery_loses_nothing(tmp_path):
    """At least once: a kill -9 while the next hop holds an unacknowledged
    message may cause a duplicate, never a loss."""
    n = 12
    with CountingSink(answer_limit=5) as sink:
        s = running(tmp_path, conn=RELAY, transport=FAST,
                    raw_extra=smarthost(sink.port))
        with s as d:
            for i in range(n):
                send(d, [f"r{i}@remote.test"], f"msg {i}")
            # the sink took 5 and holds the next one unanswered
            assert wait_for(lambda: sink.total >= 5 and sink.unanswered(),
                            timeout=30)
            d.kill9()
            sink.resume()
            d.start()
            assert wait_for(lambda: pending(d) == 0, timeout=60)
            got = sink.delivered()
            for i in range(n):
                assert got.get(f"r{i}@remote.test", 0) >= 1, (i, got)
            assert all(r["status"] == 1 for r in d.recipients())


def test_suspend_resume_queue(tmp_path):
    with FakeSmtp() as mx, running(tmp_path, conn=RELAY,
                                   raw_extra=smarthost(mx.port)) as s:
        p = ctl(s, "suspend", "Out")
        assert p.returncode == 0 and "suspended" in p.stdout, p
        send(s, ["bob@remote.test"], "held")
        time.sleep(1.5)
        assert mx.messages == [] and pending(s) == 1
        q = ctl(s, "queue").stdout
        assert any(ln.startswith("Out ") and "Suspended" in ln
                   for ln in q.splitlines()), q
        p = ctl(s, "resume", "Out")
        assert p.returncode == 0, p
        mx.wait_messages(1, timeout=20)
        assert wait_for(lambda: pending(s) == 0)


def test_retry_queue_now(tmp_path):
    port = free_port()
    with running(tmp_path, conn=RELAY, transport={
            "TransientFailureRetryInterval": "1h"},
            raw_extra=smarthost(port)) as s:
        send(s, ["bob@remote.test"], "later")
        assert wait_for(lambda: events(s, "DEFER"))
        with FakeSmtp(port=port) as mx:
            time.sleep(0.5)
            assert mx.messages == []  # it waits for its hour
            p = ctl(s, "retry", "Out")
            assert p.returncode == 0, p
            mx.wait_messages(1, timeout=20)
            assert wait_for(lambda: pending(s) == 0)


def test_remove_message(tmp_path):
    port = free_port()
    with running(tmp_path, conn=RELAY, transport={
            "TransientFailureRetryInterval": "1h"},
            raw_extra=smarthost(port)) as s:
        reply = send(s, ["bob@remote.test"], "unwanted")
        qid = s.messages()[0]["queue_id"]
        assert wait_for(lambda: events(s, "DEFER"))
        p = ctl(s, "remove", qid)
        assert p.returncode == 0 and "removed" in p.stdout, p
        assert states(s)["bob@remote.test"][0] == 2
        assert "removed" in states(s)["bob@remote.test"][1]
        assert qid not in ctl(s, "messages").stdout
        p = ctl(s, "remove", "NOSUCHID")
        assert p.returncode == 1 and "no pending message" in p.stdout
        assert mailbox(s, "alice") == []  # no notice (WithNDR $false)
        del reply


def test_sigterm_lets_a_transaction_finish(tmp_path):
    """Stopping drains outbound work too: the transaction in progress gets
    its reply and its result is stored, so nothing is sent twice after a
    restart."""
    from peers.fakesmtp import delayed
    with FakeSmtp(replies={"end-of-data": delayed(1.5, "250 2.0.0 ok")}) \
            as mx, running(tmp_path, conn=RELAY,
                           raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "in flight at stop")
        assert wait_for(lambda: mx.unanswered(), timeout=20)
        s.stop()  # SIGTERM, exit 0, no sanitizer report
        assert states(s)["bob@remote.test"][0] == 1
        assert [e["recipient-address"] for e in events(s, "SEND")] == \
            ["bob@remote.test"]
        s.start()
        time.sleep(1.5)
        assert len(mx.messages) == 1  # not sent again
