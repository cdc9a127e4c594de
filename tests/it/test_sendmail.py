"""sluice-sendmail, the sendmail(8) of local programs, against a running
sluiced over [Transport] LocalSubmissionSocket: real callers (mail(1)
from bsd-mailx, a cron-style pipe, swaks --pipe for -bs), mailq (-bp),
newaliases, the identity the daemon records (SO_PEERCRED), and failures
that are reported, never lost."""
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import BUILD, Sluice, eventually, split_headers

SENDMAIL = BUILD / "sluice-sendmail"

RELAY = """
[AcceptedDomain relay.test]
DomainType = InternalRelay

[SendConnector Relay]
AddressSpaces = relay.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9
"""


def mailname():
    """What sluice-sendmail qualifies addresses with."""
    try:
        name = Path("/etc/mailname").read_text().split()[0]
        if name:
            return name
    except (OSError, IndexError):
        pass
    return socket.gethostname()


@pytest.fixture
def local_sluice():
    """A daemon whose configuration and socket other local users reach
    (pytest's own temporary directories are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="sluice-sendmail-"))
    os.chmod(d, 0o755)
    made = []

    def make(**kw):
        kw.setdefault("domains", ("localhost", mailname()))
        transport = {"LocalSubmissionSocket": str(d / "run" / "submit.sock")}
        transport.update(kw.pop("transport", {}))
        s = Sluice(d / f"s{len(made)}", transport=transport, **kw)
        made.append(s)
        os.chmod(s.dir, 0o755)
        s.start()
        return s

    yield make
    try:
        for s in made:
            s.stop()
    finally:
        for s in made:
            s.kill9()
        shutil.rmtree(d, ignore_errors=True)


def sendmail(s, *args, data=b"", user=None, name=None, env=None):
    """Run sluice-sendmail -C s's configuration (as user, or root)."""
    argv0 = [str(SENDMAIL)]
    if name is not None:
        link = s.dir / name
        if not link.exists():
            link.symlink_to(SENDMAIL)
        argv0 = [str(link)]
    cmd = argv0 + ["-C", str(s.conf_path)] + [str(a) for a in args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup",
               "--clear-groups"] + cmd
    if isinstance(data, str):
        data = data.encode()
    return subprocess.run(cmd, input=data, capture_output=True,
                          timeout=60, env=env)


def maildir(s, domain, user):
    return s.queue_dir / "mailboxes" / domain / user / "new"


def wait_mail(s, domain, user, n=1, timeout=15):
    d = maildir(s, domain, user)

    def files():
        return sorted(d.glob("*")) if d.exists() else []

    eventually(lambda: len(files()) >= n, timeout, f"mail for {user}@{domain}")
    return [f.read_bytes() for f in files()]


def body_of(raw):
    """The body of a Maildir file (LF line ends, as Maildir readers
    expect)."""
    return raw.split(b"\n\n", 1)[1]


def header(raw, name):
    return [v for k, v in split_headers(raw.replace(b"\r\n", b"\n")
                                        .replace(b"\n", b"\r\n"))
            if k.lower() == name.lower()]


def test_mail_command(local_sluice, tmp_path):
    """bsd-mailx's mail(1), as an ordinary user, with a Cc."""
    s = local_sluice()
    wrapper = s.dir / "sendmail-wrapper"
    wrapper.write_text(f"#!/bin/sh\nexec {SENDMAIL} -C {s.conf_path} "
                       '"$@"\n')
    wrapper.chmod(0o755)
    rc = s.dir / "mailrc"
    rc.write_text(f"set sendmail={wrapper}\n")
    rc.chmod(0o644)
    env = {"PATH": "/usr/bin:/bin", "MAILRC": str(rc), "HOME": str(s.dir)}
    p = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         "mail", "-s", "Report from mail(1)", "-c", "copy@localhost",
         "alice@localhost"],
        input=b"Hello from mail(1).\n", capture_output=True, timeout=60,
        env=env, cwd=s.dir)
    assert p.returncode == 0, p.stderr
    raw = wait_mail(s, "localhost", "alice")[0]
    assert header(raw, "Subject") == [b"Report from mail(1)"]
    assert b"Hello from mail(1)." in body_of(raw)
    # who sent it is what the kernel said, not what the client claimed
    received = header(raw, "Received")[0]
    assert b"(Sluice, from userid 65534, nobody)" in received
    assert header(raw, "Return-Path") == [f"<nobody@{mailname()}>".encode()]
    assert wait_mail(s, "localhost", "copy")


def test_cron_style_pipe(local_sluice):
    """What cron does: headers on stdin, -t, the job's output, and the
    same with Debian cron's own arguments (recipient on the command
    line, -FCronDaemon -i -B8BITMIME -oem)."""
    s = local_sluice()
    job = ("From: root (Cron Daemon)\nTo: root\n"
           "Subject: Cron <root@host> /usr/local/bin/backup\n"
           "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
           "Content-Transfer-Encoding: 8bit\n"
           "X-Cron-Env: <SHELL=/bin/sh>\n\n"
           "backup done: 3 files, caf\u00e9\n.\nlast line\n")
    p = sendmail(s, "-t", "-oi", data=job)
    assert p.returncode == 0, p.stderr
    raw = wait_mail(s, mailname(), "root")[0]
    assert header(raw, "Subject") == [b"Cron <root@host> /usr/local/bin/backup"]
    body = body_of(raw)
    assert "caf\u00e9".encode() in body  # 8-bit, passed as 8BITMIME
    assert b"\n.\nlast line\n" in body  # -oi: the "." line stays
    # a Date and a Message-ID were added, the From kept
    assert header(raw, "From") == [b"root (Cron Daemon)"]
    assert len(header(raw, "Date")) == 1
    assert len(header(raw, "Message-ID")) == 1

    p = sendmail(s, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root",
                 data=job.replace("To: root\n", ""))
    assert p.returncode == 0, p.stderr
    assert len(wait_mail(s, mailname(), "root", n=2)) == 2


def test_dot_ends_input_without_i(local_sluice):
    s = local_sluice()
    p = sendmail(s, "bob@localhost",
                 data="Subject: dots\n\nbefore\n.\nafter\n")
    assert p.returncode == 0, p.stderr
    raw = wait_mail(s, "localhost", "bob")[0]
    assert b"before" in raw and b"after" not in raw


def test_t_takes_to_cc_bcc_and_removes_bcc(local_sluice):
    s = local_sluice()
    p = sendmail(s, "-t", data=(
        'To: "Doe, Ann" <ann@localhost>, ben@localhost\n'
        "Cc: team: cat@localhost;\n"
        "Bcc: dan@localhost,\n ann@localhost\n"
        "Subject: many\n\nhi\n"))
    assert p.returncode == 0, p.stderr
    for user in ("ann", "ben", "cat", "dan"):
        raw = wait_mail(s, "localhost", user)[0]
        assert not header(raw, "Bcc"), raw
        assert b"dan@localhost" not in raw
    # ann once, although named twice
    time.sleep(0.3)
    assert len(list(maildir(s, "localhost", "ann").glob("*"))) == 1


def test_bs_with_swaks(local_sluice):
    s = local_sluice()
    p = subprocess.run(
        ["swaks", "--pipe", f"{SENDMAIL} -C {s.conf_path} -bs",
         "--to", "eve@localhost", "--from", "ops@example.org",
         "--header", "Subject: via -bs", "--timeout", "20"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "250 2.6.0" in p.stdout
    raw = wait_mail(s, "localhost", "eve")[0]
    assert header(raw, "Subject") == [b"via -bs"]
    assert header(raw, "Return-Path") == [b"<ops@example.org>"]
    assert b"from userid 0, root" in header(raw, "Received")[0]


def test_bp_lists_the_queue(local_sluice):
    s = local_sluice(raw_extra=RELAY, transport={"Resolver": "127.0.0.1@9"})
    p = sendmail(s, "-f", "ops@example.org", "x@relay.test", "y@relay.test",
                 data="Subject: waiting\n\nbody\n")
    assert p.returncode == 0, p.stderr
    ids = [m["queue_id"] for m in s.messages()]
    assert len(ids) == 1
    for args, name in ((["-bp"], None), ([], "mailq")):
        q = sendmail(s, *args, name=name)
        assert q.returncode == 0, q.stderr
        out = q.stdout.decode()
        assert out.startswith("-Queue ID-")
        assert ids[0] in out and "ops@example.org" in out
        assert "x@relay.test" in out and "y@relay.test" in out
        assert out.rstrip().endswith("in 1 Request.")
    # the queue is private: another user is told so
    q = sendmail(s, "-bp", user="nobody")
    assert q.returncode == 77
    assert b"only root and the user sluiced runs as" in q.stderr


def test_bp_empty_queue_and_newaliases(local_sluice):
    s = local_sluice()
    q = sendmail(s, "-bp")
    assert q.returncode == 0 and q.stdout == b"Mail queue is empty\n"
    for args, name in ((["-bi"], None), ([], "newaliases"), (["-I"], None)):
        p = sendmail(s, *args, name=name)
        assert p.returncode == 0
        assert b"does not read /etc/aliases" in p.stderr


def test_forged_sender_is_traced(local_sluice):
    """Any local user may set the sender (as with Postfix); the trace
    header says who it really was."""
    s = local_sluice()
    p = sendmail(s, "-f", "ceo@example.com", "-F", 'The "Boss"',
                 "bob@localhost", data="Subject: x\n\nbody\n",
                 user="nobody")
    assert p.returncode == 0, p.stderr
    raw = wait_mail(s, "localhost", "bob")[0]
    assert header(raw, "Return-Path") == [b"<ceo@example.com>"]
    assert header(raw, "From") == [b'"The \\"Boss\\"" <ceo@example.com>']
    assert b"from userid 65534, nobody" in header(raw, "Received")[0]


def test_refused_recipients(local_sluice):
    s = local_sluice(transport={"RecipientValidationEnabled": "true"})
    (maildir(s, "localhost", "known").parent).mkdir(parents=True)
    p = sendmail(s, "known@localhost", "ghost@localhost",
                 data="Subject: x\n\nbody\n")
    assert p.returncode == 0, p.stderr  # on its way to known@
    assert b"ghost@localhost: 550 5.1.1" in p.stderr
    assert wait_mail(s, "localhost", "known")
    p = sendmail(s, "ghost@localhost", data="Subject: x\n\nbody\n")
    assert p.returncode == 67  # EX_NOUSER
    assert b"nothing was sent" in p.stderr
    assert len(s.messages()) == 1


def test_failures_are_reported_and_nothing_is_lost(local_sluice):
    s = local_sluice()
    # no recipients
    p = sendmail(s, data="Subject: x\n\nbody\n")
    assert p.returncode == 64 and b"no recipients" in p.stderr
    # a NUL byte cannot go through SMTP
    p = sendmail(s, "bob@localhost", data=b"Subject: x\n\nnul\x00\n")
    assert p.returncode == 65 and b"NUL" in p.stderr
    # too big for the daemon: refused before anything is sent
    s.stop()
    s.configure(transport={"LocalSubmissionSocket":
                           str(s.dir.parent / "run" / "submit.sock"),
                           "MaxReceiveSize": "1KB"})
    s.start()
    p = sendmail(s, "bob@localhost", data="Subject: x\n\n" + "y" * 4000)
    assert p.returncode == 65 and b"takes at most" in p.stderr
    # the daemon is down: a temporary failure, said so
    s.stop()
    p = sendmail(s, "bob@localhost", data="Subject: x\n\nbody\n")
    assert p.returncode == 75
    assert b"is sluiced running?" in p.stderr
    assert b"nothing was sent" in p.stderr
    s.start()
    assert s.messages() == []
    # local submission not configured
    conf = s.dir / "nosubmit.conf"
    conf.write_text(s.conf_text.replace("LocalSubmissionSocket", "; off"))
    p = subprocess.run([str(SENDMAIL), "-C", str(conf), "bob@localhost"],
                       input=b"x\n", capture_output=True, timeout=30)
    assert p.returncode == 78
    assert b"LocalSubmissionSocket" in p.stderr


def test_socket_mode(local_sluice):
    s = local_sluice()
    sock = s.dir.parent / "run" / "submit.sock"
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o666
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o755


def test_version():
    p = subprocess.run([str(SENDMAIL), "--version"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("sluice-sendmail ")
