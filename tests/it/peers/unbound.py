#!/usr/bin/python3
"""A private unbound DNS server on loopback for the black-box tests.

`Unbound` runs Debian's /usr/sbin/unbound in the foreground with a
configuration written to its own temporary directory (pid file, log and
working directory there too; no chroot, no user change, no remote control,
no trust anchors, nothing from /etc/unbound).  It listens on 127.0.0.1 and
a free port, answers only from the zones and records the test gives it,
and is stopped (SIGTERM, then SIGKILL) on exit from the `with` block.

    with Unbound(zones=["example.test"],
                 records=["example.test. MX 10 mx1.example.test.",
                          "mx1.example.test. A 127.0.0.2"],
                 servfail=["broken.test"]) as dns:
        conf = f"Resolver = {dns.spec}"        # "127.0.0.1@PORT"

- `zones` are served as "static" local zones: a name in the zone without
  records is NXDOMAIN, a name with records but not of the asked type is
  NODATA.
- `servfail` zones make every look-up fail: unbound refuses them, so the
  resolver that forwards to it (libunbound in sluiced) has no server that
  answers and reports SERVFAIL at once, as it does for a broken
  authoritative server.  (A zone forwarded to a dead port would also fail,
  but only after unbound's retries, ~30 s.)
- Names outside these zones are never looked up on the Internet: the root
  is a refusing zone too, so a test cannot depend on live DNS by mistake.
"""
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

UNBOUND = "/usr/sbin/unbound"

START_TIMEOUT = 10.0  # seconds until it answers a query
STOP_TIMEOUT = 5.0
QUERY_TIMEOUT = 0.5  # one readiness probe
PORT_TRIES = 5  # the free port may be taken before unbound binds it

RCODE_NAMES = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}


class UnboundError(Exception):
    pass


def _free_udp_tcp_port(host):
    """A port free for both UDP and TCP on host (unbound binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind((host, port))
            except OSError:
                continue
        return port
    raise UnboundError("no free port")


def _quote(value):
    if '"' in value or "\n" in value:
        raise ValueError(f"unsupported character in {value!r}")
    return f'"{value}"'


def _fqdn(name):
    return name if name.endswith(".") else name + "."


def query(host, port, name, qtype=1, timeout=QUERY_TIMEOUT):
    """Send one DNS query over UDP; the response code, or None."""
    qid = random.randrange(65536)
    wire = b"".join(bytes([len(label)]) + label.encode()
                    for label in name.rstrip(".").split(".") if label)
    packet = (struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire +
              b"\0" + struct.pack("!HH", qtype, 1))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        try:
            data = s.recv(4096)
        except OSError:
            return None
    if len(data) < 12 or struct.unpack("!H", data[:2])[0] != qid:
        return None
    return data[3] & 0x0F


class Unbound:
    def __init__(self, zones=(), records=(), servfail=(), *,
                 host="127.0.0.1", base=None):
        self.zones = [_fqdn(z) for z in zones]
        self.records = list(records)
        self.servfail = [_fqdn(z) for z in servfail]
        self.host = host
        self.port = None
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-unbound-",
                                         dir=base or "/tmp"))
        self.conf_path = self.dir / "unbound.conf"
        self.log_path = self.dir / "unbound.log"
        self.proc = None

    @property
    def spec(self):
        """The [Transport] Resolver value that points at this server."""
        return f"{self.host}@{self.port}"

    def _config(self):
        d = self.dir
        lines = [
            "server:",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            f"  directory: {_quote(str(d))}",
            f"  pidfile: {_quote(str(d / 'unbound.pid'))}",
            f"  logfile: {_quote(str(self.log_path))}",
            "  use-syslog: no",
            "  verbosity: 1",
            "  log-queries: yes",
            "  num-threads: 1",
            f"  interface: {self.host}@{self.port}",
            f"  port: {self.port}",
            "  do-ip6: no",
            "  so-reuseport: no",
            "  access-control: 127.0.0.0/8 allow",
            "  do-not-query-localhost: no",
            # No validator: no trust anchors, no DNSSEC, no root key file.
            '  module-config: "iterator"',
            # Answer at once, and never from stale data between tests.
            "  cache-max-ttl: 0",
            "  cache-max-negative-ttl: 0",
            # RFC 6761 "test." is a built-in zone: ours must replace it.
            '  local-zone: "test." nodefault',
            # Nothing outside the test's zones is looked up anywhere.
            '  local-zone: "." refuse',
        ]
        lines += [f'  local-zone: {_quote(z)} static' for z in self.zones]
        lines += [f'  local-zone: {_quote(z)} refuse' for z in self.servfail]
        lines += [f"  local-data: {_quote(r)}" for r in self.records]
        lines += ["remote-control:", "  control-enable: no", ""]
        return "\n".join(lines)

    def start(self):
        last = ""
        for _ in range(PORT_TRIES):
            self.port = _free_udp_tcp_port(self.host)
            self.conf_path.write_text(self._config())
            with open(self.dir / "stderr", "wb") as err:
                self.proc = subprocess.Popen(
                    [UNBOUND, "-d", "-c", str(self.conf_path)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=err, start_new_session=True)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                # localhost. is served by unbound itself: no upstream.
                if query(self.host, self.port, "localhost.") is not None:
                    return self
                time.sleep(0.02)
            last = self.log_text() + self._stderr_text()
            self.stop()
            if "bind" not in last.lower():
                break  # not a port race: trying again will not help
        raise UnboundError(f"unbound did not start: {last.strip()[-2000:]}")

    def _stderr_text(self):
        try:
            return (self.dir / "stderr").read_text(errors="replace")
        except OSError:
            return ""

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def rcode(self, name, qtype=1):
        """The response code name this server gives for name/qtype."""
        rc = query(self.host, self.port, name, qtype)
        return RCODE_NAMES.get(rc, rc)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
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
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    # A quick manual check: start one, print its spec, wait for Ctrl-C.
    with Unbound(zones=["example.test"],
                 records=["example.test. MX 10 mx1.example.test.",
                          "mx1.example.test. A 127.0.0.2"]) as dns:
        print(dns.spec, dns.rcode("example.test.", 15), flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    os._exit(0)
