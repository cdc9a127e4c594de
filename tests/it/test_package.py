"""The Debian package, built from the tree (`make deb`, once per session)
and installed on this machine: the user, the configuration, the
directories and the enabled unit it makes, the installed daemon started
with the installed configuration, mail through it (SMTP with STARTTLS,
and /usr/sbin/sendmail as an ordinary user), `sluicectl status`, a
reload, and a purge that leaves nothing behind.

The machine keeps Postfix installed for the other suites, and a Debian
MTA conflicts with every other.  So the package goes into a copy-on-write
view of this machine: an overlay over / in a private mount namespace,
entered with chroot.  dpkg, its maintainer scripts and the daemon run
there on the machine's own files and network (port 25 on loopback), and
every change they make lands in the overlay's upper directory, which
shows exactly what installing and purging left behind and is thrown away
at the end.  systemd is not PID 1 here: the unit is checked with
systemd-analyze, and the daemon is started directly, detached, as an init
script would.

Skipped only when dpkg is absent.
"""
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import ROOT, VERSION, Client, eventually, split_headers, swaks

pytestmark = pytest.mark.skipif(shutil.which("dpkg") is None,
                                reason="no dpkg on this machine")


# What dpkg and its helpers may leave changed after a purge: their own
# records and logs, and the man-db index their trigger rebuilds.
BOOKKEEPING = ("var/lib/dpkg/", "var/log/dpkg.log", "var/log/apt/",
               "var/cache/debconf/", "var/cache/man/", "var/lib/apt/",
               "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-",
               "var/cache/ldconfig/")


@pytest.fixture(scope="session")
def deb():
    """build/deb/sluice_VERSION_ARCH.deb, built once, lintian-checked."""
    p = subprocess.run(["make", "-C", str(ROOT), "deb"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    debs = sorted((ROOT / "build" / "deb").glob(f"sluice_{VERSION}_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


class Overlay:
    """This machine's root as a throwaway copy-on-write view."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="sluice-overlay-"))
        self.upper = self.base / "upper"
        self.root = self.base / "root"
        for d in (self.upper, self.base / "work", self.root):
            d.mkdir()
        script = (
            "set -e\n"
            f"mount -t overlay overlay -o lowerdir=/,upperdir={self.upper},"
            f"workdir={self.base / 'work'} {self.root}\n"
            f"mount -t proc proc {self.root}/proc\n"
            f"mount --rbind /dev {self.root}/dev\n"
            f"mount -t tmpfs tmpfs {self.root}/run\n"
            f"mount -t tmpfs tmpfs {self.root}/tmp\n"
            "echo ready\n"
            "exec sleep 3600\n")
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.holder.kill()
            raise RuntimeError("overlay: " + line + self.holder.stderr.read())

    def run(self, cmd, check=True, input=None, timeout=120):
        """A shell command inside, as root."""
        p = subprocess.run(
            ["nsenter", "--target", str(self.holder.pid), "--mount",
             "chroot", str(self.root), "/bin/sh", "-c", cmd],
            capture_output=True, text=True, input=input, timeout=timeout,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C",
                 "DEBIAN_FRONTEND": "noninteractive"})
        if check:
            assert p.returncode == 0, f"{cmd}: {p.returncode}\n" \
                                      f"{p.stdout}\n{p.stderr}"
        return p

    def path(self, inside):
        """A path inside, as seen from this test."""
        return Path(f"/proc/{self.holder.pid}/root") / \
            str(self.root).lstrip("/") / inside.lstrip("/")

    def snapshot(self):
        """Everything changed so far: path -> (kind, mode, owner, data)."""
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.upper):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                rel = str(p.relative_to(self.upper))
                st = os.lstat(p)
                if stat.S_ISDIR(st.st_mode):
                    if (Path("/") / rel).is_dir():
                        continue  # copied up, as it was
                    data = "dir"
                elif stat.S_ISLNK(st.st_mode):
                    data = "-> " + os.readlink(p)
                elif stat.S_ISCHR(st.st_mode):
                    data = "whiteout"  # something of / removed
                else:
                    data = hashlib.sha256(p.read_bytes()).hexdigest()
                out[rel] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                            data)
        return out

    def close(self):
        if self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def machine():
    m = Overlay()
    try:
        yield m
    finally:
        # a daemon left running keeps the namespace: stop it first, if
        # the PID is still that daemon's (not reused by another process)
        try:
            pid = int(m.path("/run/sluice/sluiced.pid").read_text())
            if Path(f"/proc/{pid}/comm").read_text().strip() == "sluiced" \
                    and os.readlink(f"/proc/{pid}/root") == str(m.root):
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        m.close()


def leftovers(before, after):
    out = []
    for path in sorted(set(before) | set(after)):
        if path.startswith(BOOKKEEPING):
            continue
        if before.get(path) != after.get(path):
            out.append(f"{path}: {before.get(path)} -> {after.get(path)}")
    return out


def wait_file(path, timeout=15):
    files = eventually(lambda: sorted(path.glob("*")) if path.exists()
                       else [], timeout, f"something in {path}")
    return files[0].read_bytes()


def test_deb_metadata(deb):
    p = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Provides",
                        "Conflicts", "Replaces", "Depends"],
                       capture_output=True, text=True, check=True)
    f = dict(ln.split(": ", 1) for ln in p.stdout.splitlines())
    assert f["Package"] == "sluice"
    for field in ("Provides", "Conflicts", "Replaces"):
        assert f[field] == "mail-transport-agent"
    assert "adduser" in f["Depends"] and "libsystemd0" in f["Depends"]
    files = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True,
                           text=True, check=True).stdout
    for path in ("./usr/sbin/sluiced", "./usr/sbin/sluicectl",
                 "./usr/sbin/sluice-sendmail", "./etc/sluice/sluice.conf",
                 "./lib/systemd/system/sluice.service",
                 "./usr/share/man/man5/sluice.conf.5.gz",
                 "./usr/share/man/man8/sluiced.8.gz",
                 "./usr/share/man/man8/sluicectl.8.gz",
                 "./usr/share/man/man8/sluice-sendmail.8.gz",
                 "./usr/sbin/sendmail -> sluice-sendmail",
                 "./usr/bin/mailq -> ../sbin/sluice-sendmail",
                 "./usr/bin/newaliases -> ../sbin/sluice-sendmail"):
        assert path in files, path
    conffiles = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True,
        check=True).stdout
    assert b"conffiles" in conffiles
    # building left the source tree as it was
    status = subprocess.run(["git", "-C", str(ROOT), "status",
                             "--porcelain", "--ignored", "debian"],
                            capture_output=True, text=True)
    assert status.stdout == "", status.stdout


@pytest.mark.timeout_s(240)
def test_install_run_reload_purge(deb, machine):
    m = machine
    # A Debian MTA conflicts with the others: dpkg refuses it beside
    # Postfix ...
    p = m.run(f"dpkg -i {deb}", check=False)
    assert p.returncode != 0
    assert "conflicting packages - not installing sluice" in p.stderr
    # ... so, as on a machine without one, take the others away first.
    others = m.run("dpkg-query -W -f '${Package} ${Status} ${Provides}\\n' |"
                   " awk '/ installed / && /mail-transport-agent/ "
                   "{print $1}'").stdout.split()
    if others:
        m.run("dpkg --purge --force-depends " + " ".join(others))
    before = m.snapshot()

    m.run(f"dpkg -i {deb}")
    # the snapshots see what the package does
    assert "usr/sbin/sluiced" in m.snapshot()
    pw = m.run("getent passwd sluice").stdout.split(":")
    assert pw[5] == "/var/spool/sluice" and pw[6].strip() == \
        "/usr/sbin/nologin"
    assert int(pw[2]) < 1000  # a system user
    conffiles = m.run("dpkg-query -W -f '${Conffiles}' sluice").stdout
    assert "/etc/sluice/sluice.conf" in conffiles
    for path, owner, mode in (("/var/spool/sluice", "sluice:sluice", 0o750),
                              ("/var/log/sluice", "sluice:sluice", 0o750),
                              ("/etc/sluice/mx.key", "root:sluice", 0o640),
                              ("/etc/sluice/mx.pem", "root:root", 0o644),
                              ("/etc/sluice/sluice.conf", "root:root",
                               0o644)):
        out = m.run(f"stat -c '%U:%G %a' {path}").stdout.split()
        assert out == [owner, f"{mode:o}"], (path, out)
    assert m.run("readlink /etc/systemd/system/multi-user.target.wants/"
                 "sluice.service").stdout.strip() == \
        "/lib/systemd/system/sluice.service"
    assert m.run("readlink -f /usr/sbin/sendmail").stdout.strip() == \
        "/usr/sbin/sluice-sendmail"
    m.run("man -w sluice.conf sluiced sluicectl sluice-sendmail")
    m.run("sluicectl config check")
    # the unit: valid, and how exposed
    verify = m.run("systemd-analyze verify /lib/systemd/system/"
                   "sluice.service 2>&1", check=False)
    assert verify.returncode == 0 and verify.stdout == "", verify.stdout
    sec = m.run("systemd-analyze security --offline=true --no-pager "
                "/lib/systemd/system/sluice.service 2>&1", check=False)
    assert "Overall exposure level for sluice.service:" in sec.stdout
    score = float(sec.stdout.split("sluice.service:")[1].split()[0])
    assert score <= 2.0, sec.stdout

    # The installed daemon with the installed configuration, started as
    # an init script would: it returns once the daemon is ready.
    m.run("sluiced -p /run/sluice/sluiced.pid")
    pid = int(m.path("/run/sluice/sluiced.pid").read_text())
    assert m.run(f"ps -o user= -p {pid}").stdout.strip() == "sluice"
    try:
        # SMTP on port 25 with STARTTLS and the certificate the package
        # made; then the sendmail of local programs, as nobody
        r = swaks(25, "--to", "postmaster@localhost", "--from",
                  "someone@example.org", "-tls", "--header",
                  "Subject: package test")
        assert r.returncode == 0, r.stdout + r.stderr
        raw = wait_file(m.path("/var/spool/sluice/mailboxes/localhost/"
                               "postmaster/new"))
        assert b"with ESMTPS" in raw
        p = m.run("setpriv --reuid=nobody --regid=nogroup --clear-groups "
                  "/usr/sbin/sendmail root@localhost",
                  input="Subject: from nobody\n\nhello\n")
        raw = wait_file(m.path("/var/spool/sluice/mailboxes/localhost/"
                               "root/new"))
        # the Maildir file has LF line ends; the parser wants CRLF
        crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        received = [v for k, v in split_headers(crlf) if k == "Received"]
        assert b"from userid 65534, nobody" in received[0]
        assert "Mail queue is empty" in m.run("mailq").stdout

        status = m.run("sluicectl status").stdout
        assert f"Version             : {VERSION}" in status
        assert "ConfigurationFile   : /etc/sluice/sluice.conf" in status
        assert "User                : sluice" in status
        assert f"ProcessId           : {pid}" in status

        m.run("printf '\\n[AcceptedDomain example.net]\\n"
              "DomainType = Authoritative\\n' >> /etc/sluice/sluice.conf")
        p = m.run("sluicectl reload")
        assert p.stdout.splitlines() == [
            "reloaded /etc/sluice/sluice.conf",
            "[AcceptedDomain example.net]: added"]
        with Client(25) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<a@example.org>").check(250)
            c.cmd("RCPT TO:<postmaster@example.net>").check(250)
            c.quit()
        log = m.path("/var/log/sluice/sluiced.log").read_text()
        assert f"sluiced {VERSION} ready" in log
        assert "reload: [AcceptedDomain example.net]: added" in log
    finally:
        os.kill(pid, signal.SIGTERM)
    eventually(lambda: not Path(f"/proc/{pid}").exists(), 30,
               "sluiced stopped")

    # Purge: what the package made goes, and nothing else changed.
    m.run("dpkg --purge --force-depends sluice")
    assert m.run("getent passwd sluice", check=False).returncode == 2
    assert m.run("getent group sluice", check=False).returncode == 2
    for path in ("/etc/sluice", "/var/spool/sluice", "/var/log/sluice",
                 "/usr/sbin/sendmail", "/lib/systemd/system/sluice.service",
                 "/etc/systemd/system/multi-user.target.wants/"
                 "sluice.service"):
        assert m.run(f"test -e {path}", check=False).returncode != 0, path
    left = leftovers(before, m.snapshot())
    assert not left, "left behind:\n" + "\n".join(left)
