#!/usr/bin/python3
"""A private Exim 4 peer for the black-box tests.

Debian's exim4 package conflicts with postfix, which the tests also use, so
Exim is never installed: scripts/setup-deps unpacks exim4-daemon-light and
exim4-base (`apt-get download`, `dpkg -x`) under EXIM_ROOT and creates the
Debian-exim user the binary was built for.  `Exim` runs that binary with
its own configuration file (`exim4 -C FILE`) in a fresh directory:
spool, logs and pid file are its own, nothing under /etc/exim4 or
/var/spool/exim4 is touched, and it listens only on a loopback port.

One instance plays both roles the tests need:
- a sender: `send(...)` submits a message (`exim4 -odi`, delivered in the
  foreground) that a manualroute router sends to `route_to` (host, port)
  with the smtp transport: opportunistic TLS, or `require_tls`, with a
  client certificate (`client_cert`, for Domain Security), with or without
  CHUNKING (`chunking`);
- a receiver: `start()` runs the daemon (`-bdf`) on `port`, offering
  STARTTLS when `server_cert` is given; every message is accepted and kept
  in the queue (queue_only), so that `received()` counts arrivals from the
  log ("<=" lines, with the Subject).

`log_text()` is the main log, where a test looks for what went wrong:
deferrals ("=="), "non-properly terminated" TLS ends, protocol errors.

The instance lives in a 0755 directory under /tmp owned by Debian-exim,
since Exim's delivery processes run as that user.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

EXIM_ROOT = Path(os.environ.get("SLUICE_EXIM_ROOT",
                                "/var/cache/sluice-exim/root"))
EXIM = EXIM_ROOT / "usr/sbin/exim4"
EXIM_USER = "Debian-exim"
START_TIMEOUT = 10.0
POLL = 0.05


class PeerError(Exception):
    pass


def available():
    """Why Exim cannot run here, or None."""
    if not EXIM.exists():
        return f"{EXIM} is missing: run scripts/setup-deps as root"
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        return f"no {EXIM_USER} user: run scripts/setup-deps as root"
    return None


class Exim:
    def __init__(self, port=None, *, host="127.0.0.1", route_to=None,
                 server_cert=None, client_cert=None, ca_file=None,
                 require_tls=False, avoid_tls=False, chunking=True,
                 hostname="exim.test"):
        why = available()
        if why:
            raise PeerError(why)
        self.port = port
        self.host = host
        self.route_to = route_to
        self.server_cert = server_cert  # (cert, key)
        self.client_cert = client_cert  # (cert, key)
        self.ca_file = ca_file
        self.require_tls = require_tls
        self.avoid_tls = avoid_tls
        self.chunking = chunking
        self.hostname = hostname
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-exim-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.spool = self.dir / "spool"
        self.logdir = self.dir / "log"
        self.conf = self.dir / "exim.conf"
        self.proc = None
        pw = pwd.getpwnam(EXIM_USER)
        for d in (self.spool, self.logdir):
            d.mkdir()
            os.chown(d, pw.pw_uid, pw.pw_gid)
        # Exim's processes run as Debian-exim and read the certificates.
        self.certs = self.dir / "certs"
        self.certs.mkdir()
        self._write_conf(pw)

    def _copy_cert(self, pair, name, pw):
        cert, key = pair
        out = []
        for src, ext in ((cert, "pem"), (key, "key")):
            dst = self.certs / f"{name}.{ext}"
            shutil.copy(src, dst)
            os.chown(dst, pw.pw_uid, pw.pw_gid)
            os.chmod(dst, 0o600 if ext == "key" else 0o644)
            out.append(dst)
        return out

    def _write_conf(self, pw):
        lines = [
            f"primary_hostname = {self.hostname}",
            f"exim_path = {EXIM}",
            f"spool_directory = {self.spool}",
            f"log_file_path = {self.logdir}/%slog",
            f"pid_file_path = {self.dir}/exim.pid",
            "log_selector = +subject +tls_certificate_verified "
            "+received_recipients +smtp_protocol_error "
            "+smtp_syntax_error +smtp_connection",
            "keep_environment =",
            "host_lookup =",
            "rfc1413_hosts =",
            "domainlist local_domains = exim.test",
            "acl_smtp_rcpt = acl_rcpt",
            "queue_only = true",
            "message_size_limit = 50M",
            "never_users = root",
            "trusted_users = root",
        ]
        if self.port is not None:
            lines += [f"daemon_smtp_ports = {self.port}",
                      f"local_interfaces = <; {self.host}"]
        if self.server_cert:
            cert, key = self._copy_cert(self.server_cert, "server", pw)
            lines += ["tls_advertise_hosts = *",
                      f"tls_certificate = {cert}",
                      f"tls_privatekey = {key}"]
        else:
            lines += ["tls_advertise_hosts ="]
        lines += ["", "begin acl", "acl_rcpt:", "  accept", "",
                  "begin routers"]
        if self.route_to:
            host, port = self.route_to
            lines += ["to_peer:",
                      "  driver = manualroute",
                      "  domains = ! +local_domains",
                      "  transport = peer_smtp",
                      f"  route_list = * {host}::{port} byname",
                      "  self = send"]
        lines += ["", "begin transports", "peer_smtp:",
                  "  driver = smtp",
                  "  allow_localhost",
                  f"  helo_data = {self.hostname}",
                  "  hosts_try_chunking = " + ("*" if self.chunking else ""),
                  "  hosts_try_fastopen ="]
        if self.require_tls:
            lines += ["  hosts_require_tls = *"]
        if self.avoid_tls:
            lines += ["  hosts_avoid_tls = *"]
        if self.ca_file:
            ca = self.certs / "ca.pem"
            shutil.copy(self.ca_file, ca)
            os.chmod(ca, 0o644)
            lines += [f"  tls_verify_certificates = {ca}",
                      "  tls_verify_cert_hostnames ="]
        if self.client_cert:
            cert, key = self._copy_cert(self.client_cert, "client", pw)
            lines += [f"  tls_certificate = {cert}",
                      f"  tls_privatekey = {key}"]
        lines += ["", "begin retry", "* * F,1h,1m", ""]
        self.conf.write_text("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o644)

    def _exim(self, *args, stdin=None, timeout=60):
        return subprocess.run([str(EXIM), "-C", str(self.conf), *args],
                              input=stdin, capture_output=True,
                              timeout=timeout)

    # --- sending ---------------------------------------------------------

    def send(self, sender, rcpt, subject, body="Hello from Exim.\n"):
        """Submit a message and deliver it now (to route_to); returns
        Exim's message id."""
        msg = (f"From: <{sender}>\nTo: <{rcpt}>\nSubject: {subject}\n\n"
               f"{body}").encode()
        p = self._exim("-odi", "-oi", "-f", sender, rcpt, stdin=msg)
        if p.returncode != 0:
            raise PeerError(f"exim -odi failed ({p.returncode}): "
                            f"{p.stderr.decode(errors='replace')}\n"
                            f"{self.log_text()[-2000:]}")
        m = re.findall(r"(\S+) <= " + re.escape(sender) + r" .*T=\"" +
                       re.escape(subject) + '"', self.log_text())
        if not m:
            raise PeerError(f"no arrival logged for {subject!r}:\n"
                            f"{self.log_text()[-2000:]}")
        return m[-1].split()[-1]

    def run_queue(self):
        """A forced queue run: whatever was deferred is tried again."""
        p = self._exim("-qff")
        if p.returncode != 0:
            raise PeerError(f"exim -qff failed: {p.stderr!r}")

    def queue_count(self):
        p = self._exim("-bpc")
        return int(p.stdout.strip() or 0)

    # --- receiving -------------------------------------------------------

    def start(self):
        self.proc = subprocess.Popen(
            [str(EXIM), "-C", str(self.conf), "-bdf"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr", "wb"))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with socket.create_connection((self.host, self.port), 1):
                    break
            except OSError:
                if self.proc.poll() is not None or \
                        time.monotonic() > deadline:
                    raise PeerError(
                        f"exim did not listen on {self.port}: "
                        f"{(self.dir / 'stderr').read_text()}"
                        f"{self.log_text()[-2000:]}")
                time.sleep(POLL)
        return self

    def received(self, subject):
        """Arrivals ("<=") logged with this Subject."""
        return [ln for ln in self.log_text().splitlines()
                if " <= " in ln and f'T="{subject}"' in ln]

    def wait_received(self, subject, n=1, timeout=20):
        deadline = time.monotonic() + timeout
        while len(self.received(subject)) < n:
            if time.monotonic() > deadline:
                raise PeerError(f"{len(self.received(subject))} of {n} "
                                f"{subject!r} arrived:\n"
                                f"{self.log_text()[-2000:]}")
            time.sleep(POLL * 4)
        return self.received(subject)

    # --- common ------------------------------------------------------------

    def log_text(self):
        try:
            return (self.logdir / "mainlog").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
