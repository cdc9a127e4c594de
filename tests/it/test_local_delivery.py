"""Local delivery (first part of the delivery issue): mail for an
Authoritative accepted domain lands in the recipient's Maildir, byte-exact
after a Return-Path header but with LF line ends (issue 10.22: Maildir
readers expect LF; CRLF is SMTP's wire form), and only then is marked
delivered; the
tracking log gets a DELIVER row; the message stays in queue.db for the
safety net."""
from pathlib import Path

from harness import Client, eventually, make_message, queue_id_of, running


def wait_for_files(d, n, timeout=10):
    """The files in d, once there are n (or those there are then)."""
    def files():
        return sorted(Path(d).glob("*")) if Path(d).is_dir() else []

    eventually(lambda: len(files()) >= n, timeout)
    return files()


def test_maildir_delivery(tmp_path):
    mail = tmp_path / "mail"
    with running(tmp_path / "d",
                 raw_extra=f"\n[AcceptedDomain local.test]\n"
                           f"Mailboxes = {mail}/%d/%u\n") as s:
        with Client(s.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@remote.example>").check(250)
            c.cmd("RCPT TO:<Alice@LOCAL.test>").check(250)
            c.cmd("RCPT TO:<bob@local.test>").check(250)
            c.cmd("DATA").check(354)
            body = make_message("maildir", "line one\r\n..dot\r\n")
            c.send(body.encode() + b".\r\n")
            qid = queue_id_of(c.reply().check(250, "2.6.0"))
        alice = wait_for_files(mail / "local.test" / "Alice" / "new", 1)
        bob = wait_for_files(mail / "local.test" / "bob" / "new", 1)
        assert len(alice) == 1 and len(bob) == 1
        for d in ("tmp", "cur"):
            assert (mail / "local.test" / "bob" / d).is_dir()
        data = bob[0].read_bytes()
        assert data.startswith(b"Return-Path: <sender@remote.example>\n")
        assert data.endswith(b"line one\n.dot\n")
        assert b"Received: from client.example" in data
        # LF only: no CR anywhere, and the stored message is the same
        # text line for line
        assert b"\r" not in data
        stored = s.bodies()[0]
        assert data.split(b"\n", 1)[1] == stored.replace(b"\r\n", b"\n")
        # recorded as delivered, kept for the safety net
        eventually(lambda: [r["status"] for r in s.recipients()] == [1, 1],
                   20, "both recipients recorded delivered")
        assert len(s.messages()) == 1

        def delivered_rows():
            log = "".join(open(p).read() for p in s.tracklog_files())
            return log.count(f"DELIVER,{qid},")
        eventually(lambda: delivered_rows() == 2, 20, "two DELIVER rows")


def alice_only(tmp_path, validation):
    """A daemon with local.test, whose only mailbox is alice's."""
    mail = tmp_path / "mail"
    (mail / "local.test" / "alice").mkdir(parents=True)
    return mail, running(tmp_path / "d",
                         transport={"RecipientValidationEnabled": validation},
                         raw_extra=f"\n[AcceptedDomain local.test]\n"
                                   f"Mailboxes = {mail}/%d/%u\n")


def test_recipient_validation_rejects_unknown_mailboxes(tmp_path):
    mail, daemon = alice_only(tmp_path, "true")
    with daemon as s:
        with Client(s.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@remote.example>").check(250)
            c.cmd("RCPT TO:<alice@local.test>").check(250)
            c.cmd("RCPT TO:<nobody@local.test>").check(550, "5.1.1")
            c.cmd("RCPT TO:<Postmaster@local.test>").check(250)
            c.cmd("RCPT TO:<Postmaster>").check(250)
            c.cmd("DATA").check(354)
            c.send(make_message("known only").encode() + b".\r\n")
            c.reply().check(250)
        assert wait_for_files(mail / "local.test" / "alice" / "new", 1)
        assert not (mail / "local.test" / "nobody").exists()


def test_bare_postmaster_reaches_the_first_authoritative_domain(tmp_path):
    with running(tmp_path / "d") as s:
        with Client(s.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@remote.example>").check(250)
            c.cmd("RCPT TO:<Postmaster>").check(250)
            c.cmd("DATA").check(354)
            c.send(make_message("to the postmaster").encode() + b".\r\n")
            c.reply().check(250)
        box = s.queue_dir / "mailboxes" / "localhost" / "postmaster" / "new"
        assert wait_for_files(box, 1)


def _dsn_fields(raw):
    import email
    msg = email.message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/report"
    blocks = msg.get_payload()[1].get_payload()
    return [dict(b.items()) for b in blocks if "Final-Recipient" in b]


def test_local_notify_success_and_expiry(tmp_path):
    """Local delivery honours NOTIFY=SUCCESS, and a mailbox that cannot be
    written until MessageExpirationTimeout fails with a DSN."""
    mail = tmp_path / "mail"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory should be\n")
    with running(tmp_path / "d", transport={
            "MessageExpirationTimeout": "5s",
            "TransientFailureRetryInterval": "1s"},
            raw_extra=f"\n[AcceptedDomain local.test]\n"
                      f"Mailboxes = {mail}/%d/%u\n"
                      f"\n[AcceptedDomain broken.test]\n"
                      f"Mailboxes = {blocked}/%d/%u\n") as s:
        with Client(s.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<alice@local.test>").check(250)
            c.cmd("RCPT TO:<bob@local.test> NOTIFY=SUCCESS").check(250)
            c.cmd("RCPT TO:<carol@broken.test>").check(250)
            c.cmd("DATA").check(354)
            c.send(make_message("notices").encode() + b".\r\n")
            c.reply().check(250)
        inbox = mail / "local.test" / "alice" / "new"
        files = wait_for_files(inbox, 2, timeout=30)
        assert len(files) == 2, files
        actions = {}
        for f in files:
            for b in _dsn_fields(f.read_bytes()):
                actions[b["Final-Recipient"]] = (b["Action"], b["Status"])
        assert actions["rfc822;bob@local.test"] == ("delivered", "2.0.0")
        assert actions["rfc822;carol@broken.test"][0] == "failed"
        assert {r["addr"]: r["status"] for r in s.recipients()}[
            "carol@broken.test"] == 2


def test_recipient_validation_is_on_by_default(tmp_path):
    # None drops the harness's "false": the daemon's default applies
    _, daemon = alice_only(tmp_path, None)
    with daemon as s:
        with Client(s.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@remote.example>").check(250)
            c.cmd("RCPT TO:<alice@local.test>").check(250)
            c.cmd("RCPT TO:<nobody@local.test>").check(550, "5.1.1")


def test_local_mail_faster_than_the_maildir_agent(tmp_path):
    """More local recipients at once than the Maildir agent queues
    (MAILDIR_QUEUE_MAX): those it could not take wait and are delivered
    all the same.  (The new-mail walk had moved past them: they stayed
    never tried until a restart; found by the transport rule reload test.)
    """
    from harness import join_threads, start_threads

    mail = tmp_path / "mail"
    accepted, failures = [], []

    def sender(n):
        try:
            with Client(s.port) as c:
                c.ehlo()
                for i in range(100):
                    c.cmd("MAIL FROM:<sender@remote.example>").check(250)
                    for r in range(3):
                        c.cmd(f"RCPT TO:<u{n}r{r}@local.test>").check(250)
                    c.cmd("DATA").check(354)
                    c.send(make_message(f"burst {n} {i}").encode() +
                           b".\r\n")
                    c.reply().check(250)
                    accepted.append(n)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(repr(exc))

    with running(tmp_path / "d",
                 raw_extra=f"\n[AcceptedDomain local.test]\n"
                           f"Mailboxes = {mail}/%d/%u\n") as s:
        join_threads(start_threads(sender, [(n,) for n in range(4)]), 50,
                     "senders")
        assert failures == [] and len(accepted) == 400
        eventually(lambda: all(r["status"] == 1 for r in s.recipients()),
                   40, "every local recipient delivered")
        assert [r for r in s.recipients() if r["status"] != 1] == []
        assert len(list(mail.glob("local.test/*/new/*"))) == 1200
