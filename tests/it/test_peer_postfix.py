"""The Postfix peer helpers (peers/postfix.py) work on this machine.

A private Postfix instance starts on a loopback port without touching the
system's Postfix, accepts mail over SMTP (smtplib), delivers it to its
Maildir, keeps it on hold when asked, relays to an smtp-sink that counts
it, logs to its own maillog file, and leaves no process or directory
behind once stopped.  Other tests use these helpers as real peers.
"""
import smtplib

import pytest

from harness import free_port
from peers.postfix import Postfix, SmtpSink

MSG = b"From: a@example.org\r\nSubject: peer test\r\n\r\nhello\r\n"


@pytest.fixture
def postfix_factory():
    made = []

    def make(**kw):
        pf = Postfix(free_port(), **kw)
        made.append(pf)
        return pf.start()

    yield make
    for pf in made:
        pf.close()
        assert pf.pids() == [], "postfix processes left behind"
        assert not pf.dir.exists(), "instance directory left behind"


def test_delivers_to_maildir_and_logs(postfix_factory):
    pf = postfix_factory(mailbox_domains=["example.test"], mynetworks=())
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=10) as s:
        code, banner = s.ehlo("client.test")
        assert code == 250
        s.sendmail("a@example.org", ["bob@example.test"], MSG)
        # An MX for example.test only: no relaying for loopback clients.
        with pytest.raises(smtplib.SMTPRecipientsRefused) as ex:
            s.sendmail("a@example.org", ["eve@elsewhere.test"], MSG)
        assert ex.value.recipients["eve@elsewhere.test"][0] == 454
    (text,) = pf.wait_delivered("bob@example.test")
    assert b"Subject: peer test" in text
    assert pf.delivered("other@example.test") == []
    pf.wait_log(r"to=<bob@example.test>, relay=virtual.*status=sent")
    assert pf.queue_count() == 0
    assert "/etc/postfix" not in str(pf.conf_dir)


def test_hold_keeps_mail_queued(postfix_factory):
    pf = postfix_factory(relay_domains=["example.com"], mynetworks=(),
                         hold=True)
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=10) as s:
        for _ in range(3):
            s.sendmail("a@example.org", ["b@example.com"], MSG)
        procs, rss_kb, pss_kb = pf.smtpd_memory()
        assert procs >= 1 and rss_kb >= pss_kb > 0
    pf.wait_queue(3, queues=("hold",))
    assert len(pf.queue_ids("hold")) == 3
    pf.wait_log(r"hold: DATA from localhost\[127\.0\.0\.1\]")


def test_relays_to_counting_sink(postfix_factory):
    with SmtpSink(free_port(), dump=True) as sink:
        pf = postfix_factory(relayhost=f"[127.0.0.1]:{sink.port}")
        with smtplib.SMTP("127.0.0.1", pf.port, timeout=10) as s:
            s.sendmail("a@example.org", ["c@remote.test"], MSG)
            s.sendmail("a@example.org", ["d@remote.test"], MSG)
        sink.wait_count(2)
        pf.wait_queue(0)
        texts = sink.messages()
        assert len(texts) == 2
        assert all(b"Subject: peer test" in t for t in texts)
    assert not sink.dir.exists()
