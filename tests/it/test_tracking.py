"""The message tracking log as an Exchange administrator reads it (issue
11): Exchange's fields in Exchange's order (then Sluice's `tls`), the
Message-ID header as message-id and the queue id as internal-message-id
on every row of a message, size, subject (MessageTrackingLogSubject-
LoggingEnabled), both ends of each hop, the whole multi-line reply, the
next hop and TLS outcome on DEFER rows, rows in causal order; and
`sluicectl get-messagetrackinglog` (Get-MessageTrackingLog) searching
it."""
import datetime
import glob
import subprocess

from harness import SLUICECTL, Client, make_message, running
from peers.fakesmtp import FakeSmtp
from test_delivery import RELAY, events, send, smarthost, wait_for

EXCHANGE_FIELDS = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,"
    "source-context,connector-id,source,event-id,internal-message-id,"
    "message-id,network-message-id,recipient-address,recipient-status,"
    "total-bytes,recipient-count,related-recipient-address,reference,"
    "message-subject,sender-address,return-path,message-info,"
    "directionality,tenant-id,original-client-ip,original-server-ip,"
    "custom-data,transport-traffic-type,log-id,schema-version")


def ctl(s, *args):
    return subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                          capture_output=True, text=True, timeout=60)


def qid_of(reply):
    return reply.text.split("<")[1].split(">")[0]


def test_fields_and_receive_row(tmp_path):
    with running(tmp_path) as s:
        with Client(s.port) as c:
            r = c.send_message("tracker@sender.example",
                               ["one@localhost", "two@example.test"],
                               make_message("Quarterly, figures"))
            r.check(250)
        qid = qid_of(r)
        assert wait_for(lambda: len(events(s, "RECEIVE")) == 2)
        headers, _ = s.tracklog()
        assert f"#Fields: {EXCHANGE_FIELDS},tls" in headers
        size = s.message(qid)["size"]
        for e in events(s, "RECEIVE"):
            assert e["internal-message-id"] == qid
            assert e["message-id"] == "<Quarterly, figures@client.example>"
            assert e["message-subject"] == "Quarterly, figures"
            assert e["total-bytes"] == str(size)
            assert e["recipient-count"] == "2"
            assert e["sender-address"] == "tracker@sender.example"
            assert e["return-path"] == "tracker@sender.example"
            assert e["source"] == "SMTP"
            assert e["connector-id"] == "Default"
            assert e["client-ip"] == "127.0.0.1"
            assert e["client-hostname"] == "client.example"  # its EHLO
            assert e["server-ip"] == "127.0.0.1"
            assert e["server-hostname"] == "sluice.test"
            assert e["original-client-ip"] == "127.0.0.1"
            assert e["directionality"] == "Incoming"
            assert "S:AuthAs=Anonymous" in e["custom-data"]
            assert e["tls"] == "tls=none"
            assert e["source-context"]  # the protocol log's session id
        # the local deliveries carry the same message facts
        assert wait_for(lambda: len(events(s, "DELIVER")) == 2)
        for e in events(s, "DELIVER"):
            assert e["source"] == "STOREDRIVER"
            assert e["message-id"] == "<Quarterly, figures@client.example>"
            assert e["internal-message-id"] == qid
            assert e["message-subject"] == "Quarterly, figures"
            assert e["total-bytes"] == str(size)


def test_subject_logging_off_and_no_message_id(tmp_path):
    with running(tmp_path, transport={
            "MessageTrackingLogSubjectLoggingEnabled": "false"}) as s:
        with Client(s.port) as c:
            r = c.send_message("a@sender.example", ["u@localhost"],
                               "From: a@sender.example\r\n"
                               "Subject: private\r\n\r\nbody\r\n")
            r.check(250)
        qid = qid_of(r)
        assert wait_for(lambda: events(s, "RECEIVE"))
        (e,) = events(s, "RECEIVE")
        assert e["message-subject"] == ""
        # none in the message: one of ours, as Exchange assigns one
        assert e["message-id"] == f"<{qid}@sluice.test>"
        assert s.message(qid)["message_id"] == f"<{qid}@sluice.test>"


def test_send_row_has_the_whole_reply_and_the_hop(tmp_path):
    reply = "250-2.0.0 Ok: queued\n250 2.0.0 as NEXTHOP42"
    with FakeSmtp(replies={"end-of-data": reply}) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        qid = qid_of(send(s, ["bob@remote.test"], "multi"))
        mx.wait_messages(1, timeout=20)
        assert wait_for(lambda: events(s, "SEND"))
        (e,) = events(s, "SEND")
        # both lines, the next hop's queue id included
        assert e["recipient-status"] == "250 2.0.0 Ok: queued as NEXTHOP42"
        assert e["internal-message-id"] == qid
        assert e["message-id"] == "<multi@client.example>"
        assert e["message-subject"] == "multi"
        assert e["total-bytes"] == str(s.message(qid)["size"])
        assert e["source"] == "SMTP" and e["connector-id"] == "Out"
        assert e["server-ip"] == "127.0.0.1"
        assert e["server-hostname"] == "127.0.0.1"
        assert e["client-ip"] == "127.0.0.1"
        assert e["client-hostname"] == "out.sluice.test"
        assert e["tls"] == "tls=opportunistic:none"
        sent = "".join(open(f).read() for f in glob.glob(
            str(s.log_dir / "ProtocolLog" / "SmtpSend" / "SEND*.LOG")))
        assert e["source-context"] and e["source-context"] in sent


def test_defer_row_names_the_host_and_tls(tmp_path):
    with FakeSmtp(banner="421 4.3.2 too busy") as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TransientFailureRetryInterval": "1h"},
                raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "busy")
        assert wait_for(lambda: events(s, "DEFER"))
        (e,) = events(s, "DEFER")
        assert e["server-hostname"] == "127.0.0.1"
        assert e["server-ip"] == "127.0.0.1"
        assert e["tls"] == "tls=opportunistic:none"
        assert "421" in e["recipient-status"]
        assert e["message-id"] == "<busy@client.example>"


def test_dsn_row_follows_the_fail_row(tmp_path):
    with FakeSmtp(replies={"RCPT": "550 5.1.1 no such user"}) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        qid = qid_of(send(s, ["bad@remote.test"], "bounce me"))
        assert wait_for(lambda: events(s, "DSN"))
        rows = [e for e in events(s)
                if e["event-id"] in ("FAIL", "DSN")]
        assert [e["event-id"] for e in rows] == ["FAIL", "DSN"]
        fail, dsn = rows
        assert fail["recipient-status"].startswith("550 5.1.1")
        assert dsn["source"] == "DSN"
        assert dsn["recipient-address"] == "alice@example.test"
        assert dsn["related-recipient-address"] == "bad@remote.test"
        assert dsn["reference"] == qid  # the message that caused it
        assert dsn["internal-message-id"] != qid
        assert dsn["message-subject"] == "Undeliverable: bounce me"
        assert dsn["return-path"] == "<>"
        notice = [m for m in s.messages()
                  if m["queue_id"] == dsn["internal-message-id"]]
        assert notice and notice[0]["sender"] == ""
        assert notice[0]["message_id"] == dsn["message-id"]


def test_get_messagetrackinglog(tmp_path):
    with running(tmp_path) as s:
        ids = []
        for n, (sender, rcpt) in enumerate([
                ("alice@sender.example", "u1@localhost"),
                ("bob@sender.example", "u2@localhost"),
                ("alice@sender.example", "u3@example.test")]):
            with Client(s.port) as c:
                r = c.send_message(sender, [rcpt], make_message(f"m{n}"))
                r.check(250)
            ids.append(qid_of(r))
        assert wait_for(lambda: len(events(s, "DELIVER")) == 3)
        track = s.log_dir / "MessageTracking"

        def rows(*args):
            p = ctl(s, "get-messagetrackinglog", *args)
            assert p.returncode == 0, p
            return [ln.split() for ln in p.stdout.splitlines()[1:]]

        got = rows("--sender", "ALICE@sender.example")
        assert sorted((r[1], r[4]) for r in got) == sorted(
            [("RECEIVE", "u1@localhost"), ("DELIVER", "u1@localhost"),
             ("RECEIVE", "u3@example.test"), ("DELIVER", "u3@example.test")])
        got = rows("--recipients", "u2@localhost,u3@example.test",
                   "--event-id", "deliver")
        assert sorted(r[4] for r in got) == ["u2@localhost", "u3@example.test"]
        assert [r[1] for r in rows("--message-id", "<m1@client.example>")] \
            == ["RECEIVE", "DELIVER"]
        assert len(rows("--message-id", "m1@client.example")) == 2
        assert len(rows("--internal-message-id", ids[2])) == 2
        assert len(rows("--message-subject", "M2")) == 2
        assert rows("--sender", "nobody@sender.example") == []
        # Format-List: Exchange's property names
        p = ctl(s, "get-messagetrackinglog", "--message-id",
                "<m0@client.example>", "--event-id", "RECEIVE", "--list")
        assert f"InternalMessageId       : {ids[0]}" in p.stdout
        assert "MessageId               : <m0@client.example>" in p.stdout
        # -ResultSize, and Exchange's warning when there is more
        p = ctl(s, "get-messagetrackinglog", "--result-size", "2")
        assert len(p.stdout.splitlines()) == 3 and "WARNING" in p.stderr
        # time range, UTC, end excluded
        today = datetime.datetime.now(datetime.timezone.utc).date()
        tomorrow = today + datetime.timedelta(days=1)
        assert len(rows("--start", str(today))) == 6
        assert rows("--start", str(tomorrow)) == []
        assert rows("--end", str(today)) == []
        # Files are chosen by the day in their name: a file named for
        # another day is not read for today, even with today's rows.
        day = track.glob("MSGTRK*.LOG").__next__().read_text()
        (track / "MSGTRK20200101-1.LOG").write_text(
            day.replace("alice@sender.example", "old@sender.example"))
        assert rows("--sender", "old@sender.example",
                    "--start", str(today)) == []
        assert len(rows("--sender", "old@sender.example")) == 4
        # a file of the earlier layout is read by its own #Fields line
        (track / "MSGTRK20200102-1.LOG").write_text(
            "#Software: Sluice\r\n#Fields: date-time,event-id,message-id,"
            "sender-address,recipient-address,connector-id,next-hop,tls,"
            "status-text\r\n2020-01-02T10:00:00.000Z,SEND,OLDQID,"
            "older@sender.example,x@remote.test,Out,mx.test,tls=none,"
            "250 ok\r\n")
        got = rows("--sender", "older@sender.example")
        assert len(got) == 1 and got[0][1] == "SEND" and \
            "x@remote.test" in got[0]
        assert rows("--sender", "older@sender.example", "--start",
                    "2020-01-02T10:00:01") == []
        p = ctl(s, "get-messagetrackinglog", "--start", "yesterday")
        assert p.returncode == 2 and "not a date" in p.stderr
