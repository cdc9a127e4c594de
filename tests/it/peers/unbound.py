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

DNSSEC (DANE, issue 16): `signed` zones are signed at start with
ldns-signzone (package ldnsutils) under a key made for the occasion, and
served by unbound as authoritative zones with their signatures; the DS
records of their keys are written to `anchor_path`, the file a test names
as [Transport] DnssecTrustAnchorFile, so for sluiced those zones are
secure.  Names in other zones are unsigned ("insecure").

    with Unbound(signed={"dnssec.test": ["dnssec.test. MX 10 mx.dnssec.test.",
                                         "mx.dnssec.test. A 127.0.0.2",
                                         "_25._tcp.mx.dnssec.test. TLSA 3 1 1 ..."]},
                 insecure={"plain.dnssec.test": ["mx.plain.dnssec.test. A 127.0.0.3"]},
                 bogus=["bad.dnssec.test. A 127.0.0.4"]) as dns:
        conf = f"Resolver = {dns.spec}\nDnssecTrustAnchorFile = {dns.anchor_path}"

- `insecure` zones are delegated from their signed parent without a DS
  record (the parent's signed NSEC proves there is none) and served
  unsigned: the RFC 4035 "insecure" case inside a signed tree.
- `bogus` records are signed with their zone, and then their signatures
  are damaged: a validator must call them bogus (what an attacker who
  forges an answer produces).
- `tlsa_rdata(cert)` computes the data of a TLSA record for a PEM
  certificate ("3 1 1 <sha256 of the public key>" by default).
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
LDNS_KEYGEN = "/usr/bin/ldns-keygen"
LDNS_SIGNZONE = "/usr/bin/ldns-signzone"
# Signed zones' records live this long in caches: the tests change
# answers between runs and never wait for a cache to forget.
SIGNED_TTL = 1

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
    """A value for unbound.conf: in double quotes, or in single quotes
    when it holds double quotes itself (a TXT record's text)."""
    if "\n" in value or ('"' in value and "'" in value):
        raise ValueError(f"unsupported character in {value!r}")
    return f"'{value}'" if '"' in value else f'"{value}"'


def _fqdn(name):
    return name if name.endswith(".") else name + "."


def tlsa_rdata(cert, usage=3, selector=1, mtype=1, index=0):
    """The RDATA of a TLSA record ("3 1 1 HEX") for the index-th
    certificate of the PEM file cert (0: the leaf, 1: its issuer ...):
    selector 1 is the public key (SubjectPublicKeyInfo), 0 the whole
    certificate; matching type 1 is SHA2-256, 2 SHA2-512, 0 the data."""
    import hashlib
    import re as _re
    pems = _re.findall(rb"-----BEGIN CERTIFICATE-----.*?"
                       rb"-----END CERTIFICATE-----",
                       Path(cert).read_bytes(), _re.S)
    pem = pems[index]
    if selector == 1:
        pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"],
                             input=pem, capture_output=True, check=True)
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform",
                              "DER"], input=pub.stdout, capture_output=True,
                             check=True).stdout
    else:
        der = subprocess.run(["openssl", "x509", "-outform", "DER"],
                             input=pem, capture_output=True,
                             check=True).stdout
    data = {0: lambda b: b, 1: lambda b: hashlib.sha256(b).digest(),
            2: lambda b: hashlib.sha512(b).digest()}[mtype](der)
    return f"{usage} {selector} {mtype} {data.hex()}"


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
                 signed=None, insecure=None, bogus=(),
                 host="127.0.0.1", base=None):
        self.zones = [_fqdn(z) for z in zones]
        self.records = list(records)
        self.servfail = [_fqdn(z) for z in servfail]
        self.signed = {_fqdn(z): list(r) for z, r in (signed or {}).items()}
        self.insecure = {_fqdn(z): list(r)
                         for z, r in (insecure or {}).items()}
        self.bogus = list(bogus)
        self.host = host
        self.port = None
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-unbound-",
                                         dir=base or "/tmp"))
        self.conf_path = self.dir / "unbound.conf"
        self.log_path = self.dir / "unbound.log"
        self.anchor_path = self.dir / "trust-anchors"
        self.proc = None
        if self.signed or self.insecure:
            self._sign()

    # DNSSEC ------------------------------------------------------------

    def _parent(self, zone):
        """The signed zone a zone is delegated from."""
        best = None
        for z in self.signed:
            if zone != z and zone.endswith("." + z) and \
                    (best is None or len(z) > len(best)):
                best = z
        if best is None:
            raise ValueError(f"insecure zone {zone} has no signed parent")
        return best

    def _zone_text(self, zone, records, extra=()):
        ns = f"ns.{zone}"
        lines = [f"$ORIGIN {zone}", f"$TTL {SIGNED_TTL}",
                 f"{zone} SOA {ns} hostmaster.{zone} 1 3600 600 86400 "
                 f"{SIGNED_TTL}",
                 f"{zone} NS {ns}", f"{ns} A {self.host}"]
        return "\n".join(lines + list(records) + list(extra)) + "\n"

    @staticmethod
    def _damage(text, bogus):
        """Flip a bit in the signature over each bogus record's RRset."""
        targets = {(_fqdn(r.split()[0]).lower(), r.split()[1].upper())
                   for r in bogus}
        out = []
        for line in text.splitlines():
            f = line.split()
            if len(f) > 9 and f[3] == "RRSIG" and \
                    (f[0].lower(), f[4].upper()) in targets:
                sig = f[-1]
                i = len(sig) // 2
                f[-1] = sig[:i] + ("A" if sig[i] != "A" else "B") + \
                    sig[i + 1:]
                line = "\t".join(f)
            out.append(line)
        return "\n".join(out) + "\n"

    def _sign(self):
        """Make a key per signed zone, sign it, and write the DS records
        of all keys to anchor_path; insecure zones are written unsigned
        and delegated (NS and glue, no DS) from their parent."""
        delegations = {z: [] for z in self.signed}
        for child in self.insecure:
            delegations[self._parent(child)] += [
                f"{child} NS ns.{child}", f"ns.{child} A {self.host}"]
        anchors = []
        for zone, records in self.signed.items():
            name = zone.rstrip(".")
            src = self.dir / f"{name}.zone"
            bogus = [r for r in self.bogus
                     if _fqdn(r.split()[0]).endswith("." + zone)]
            src.write_text(self._zone_text(zone, records + bogus,
                                           delegations[zone]))
            key = subprocess.run(
                [LDNS_KEYGEN, "-a", "ECDSAP256SHA256", "-k", zone],
                cwd=self.dir, capture_output=True, text=True, check=True,
                timeout=30).stdout.strip()
            # NSEC3: validators do not synthesise answers from it
            # (RFC 8198 is NSEC only), so every question reaches this
            # server and a refused one (servfail zones) fails as asked.
            subprocess.run([LDNS_SIGNZONE, "-n", "-t", "0",
                            "-f", f"{name}.signed",
                            f"{name}.zone", key], cwd=self.dir,
                           capture_output=True, check=True, timeout=30)
            signed = self.dir / f"{name}.signed"
            if bogus:
                signed.write_text(self._damage(signed.read_text(), bogus))
            anchors.append((self.dir / f"{key}.ds").read_text().strip())
        for zone, records in self.insecure.items():
            name = zone.rstrip(".")
            (self.dir / f"{name}.signed").write_text(
                self._zone_text(zone, records))
        self.anchor_path.write_text("\n".join(anchors) + "\n")
        # sluiced reads it after it dropped root: public, like root.key
        os.chmod(self.dir, 0o755)
        os.chmod(self.anchor_path, 0o644)

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
        # Authoritative zones are answered after local zones: the
        # refusing root must let them through.
        lines += [f'  local-zone: {_quote(z)} transparent'
                  for z in list(self.signed) + list(self.insecure)]
        lines += [f'  local-zone: {_quote(z)} static' for z in self.zones]
        lines += [f'  local-zone: {_quote(z)} refuse' for z in self.servfail]
        lines += [f"  local-data: {_quote(r)}" for r in self.records]
        for z in list(self.signed) + list(self.insecure):
            zonefile = self.dir / f"{z.rstrip('.')}.signed"
            lines += ["auth-zone:", f"  name: {_quote(z)}",
                      f"  zonefile: {_quote(str(zonefile))}",
                      "  for-downstream: yes", "  for-upstream: no"]
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

    def reload(self, records=None, zones=None, servfail=None):
        """Serve other records (and zones) from now on, on the same
        port: the server is restarted (unbound keeps no state a test
        needs)."""
        if records is not None:
            self.records = list(records)
        if zones is not None:
            self.zones = [_fqdn(z) for z in zones]
        if servfail is not None:
            self.servfail = [_fqdn(z) for z in servfail]
        self.stop()
        self.conf_path.write_text(self._config())
        with open(self.dir / "stderr", "ab") as err:
            self.proc = subprocess.Popen(
                [UNBOUND, "-d", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if query(self.host, self.port, "localhost.") is not None:
                return self
            time.sleep(0.02)
        raise UnboundError("unbound did not restart: " +
                           (self.log_text() + self._stderr_text())[-2000:])

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


class ValidatingUnbound:
    """A validating recursive unbound in front of an `Unbound` (its
    authoritative zones), for peers that validate through their system
    resolver (Postfix's smtp_dns_support_level = dnssec): it checks the
    signatures with the signed zones' trust anchors and sets the AD bit.
    It listens on port 53 of a 127.x.y.z address of its own (a
    resolv.conf cannot name another port; needs root) and writes a
    resolv.conf pointing there, with "options trust-ad" so that glibc
    passes the AD bit on (resolv_conf_path)."""

    def __init__(self, upstream, base=None):
        self.upstream = upstream
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-vunbound-",
                                         dir=base or "/tmp"))
        os.chmod(self.dir, 0o755)
        self.conf_path = self.dir / "unbound.conf"
        self.log_path = self.dir / "unbound.log"
        self.resolv_conf_path = self.dir / "resolv.conf"
        self.host = None
        self.proc = None

    def _free_address(self):
        for _ in range(50):
            host = f"127.{random.randrange(54, 250)}." \
                   f"{random.randrange(1, 250)}.{random.randrange(1, 250)}"
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind((host, 53))
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind((host, 53))
            except OSError:
                continue
            return host
        raise UnboundError("no free 127.x.y.z:53")

    def _config(self):
        d = self.dir
        return "\n".join([
            "server:",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            f"  directory: {_quote(str(d))}",
            f"  pidfile: {_quote(str(d / 'unbound.pid'))}",
            f"  logfile: {_quote(str(self.log_path))}",
            "  use-syslog: no",
            "  verbosity: 1",
            "  val-log-level: 2",
            "  num-threads: 1",
            f"  interface: {self.host}@53",
            "  do-ip6: no",
            "  so-reuseport: no",
            "  access-control: 127.0.0.0/8 allow",
            "  do-not-query-localhost: no",
            '  module-config: "validator iterator"',
            f"  trust-anchor-file: {_quote(str(self.upstream.anchor_path))}",
            "  cache-max-ttl: 0",
            "  cache-max-negative-ttl: 0",
            '  local-zone: "test." nodefault',
            "forward-zone:",
            '  name: "."',
            f"  forward-addr: {self.upstream.host}@{self.upstream.port}",
            "remote-control:",
            "  control-enable: no",
            ""])

    def start(self):
        self.host = self._free_address()
        self.conf_path.write_text(self._config())
        self.resolv_conf_path.write_text(
            f"nameserver {self.host}\noptions trust-ad edns0\n")
        os.chmod(self.resolv_conf_path, 0o644)
        with open(self.dir / "stderr", "wb") as err:
            self.proc = subprocess.Popen(
                [UNBOUND, "-d", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if query(self.host, 53, "localhost.") is not None:
                return self
            time.sleep(0.02)
        text = (self.dir / "stderr").read_text(errors="replace")
        self.close()
        raise UnboundError(f"validating unbound did not start: {text}")

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

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
