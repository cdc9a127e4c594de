#!/usr/bin/python3
"""A DNS server on loopback that holds each MX answer until the domain's
MTA-STS question has come (issue 19): it shows, by counting, whether a
mail server asks a new destination's `_mta-sts` TXT question while its MX
question is still out, or only once the MX answer is in.

`HoldingDns(zone, mx_addr)` answers, over UDP on 127.0.0.1 and a free port
(`spec` is "127.0.0.1@PORT", as [Transport] Resolver takes it):

- `D.ZONE MX` (any D): `MX 10 mx.ZONE`, held until `_mta-sts.D.ZONE TXT`
  has been asked, or `hold` seconds have passed (then answered anyway, so
  a server that asks one after the other still gets its mail through,
  late);
- `mx.ZONE A`: `mx_addr`; `mx.ZONE AAAA`: no data;
- `_mta-sts.D.ZONE TXT`: no data (no MTA-STS policy);
- any name under `nx.ZONE`: NXDOMAIN, for every type (its MX is held as
  above);
- anything else: REFUSED.

Counts, per domain (lower case): `mx_asked`, `txt_asked` (sets of
domains), `overlapped` (the TXT question came before that domain's MX
answer went out: while it was held, or before the MX question itself),
`released_late` (the MX answer went out because `hold` ran out).  Negative answers carry no SOA, as the tests' unbound zones.

Not a resolver: one question per message, no EDNS in answers, no TCP.
Every held answer goes out when its TXT question comes, when `hold` runs
out, or at stop (so no client waits on a stopped server)."""
import select
import socket
import struct
import threading
import time

TTL = 3600
POLL = 0.01  # seconds between looks at the held answers


def _name(data, off):
    """(lower-case name, offset after it) of an uncompressed query name."""
    labels = []
    while True:
        n = data[off]
        off += 1
        if n == 0:
            return ".".join(labels).lower(), off
        if n > 63:
            raise ValueError("compressed or bad label in a question")
        labels.append(data[off:off + n].decode("ascii"))
        off += n


def _wire(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


class HoldingDns:
    def __init__(self, zone, mx_addr, hold=2.0):
        self.zone = zone.lower().rstrip(".")
        self.mx_addr = mx_addr
        self.hold = hold
        self.mx_asked, self.txt_asked = set(), set()
        self.overlapped, self.released_late = set(), set()
        self._held = {}  # domain -> [(deadline, addr, answer)]
        self._lock = threading.Lock()
        self._stop = False
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def spec(self):
        return f"127.0.0.1@{self.port}"

    def counts(self):
        with self._lock:
            return (set(self.mx_asked), set(self.txt_asked),
                    set(self.overlapped), set(self.released_late))

    def _answer(self, query, qend, qtype, rcode, records):
        qid, flags = struct.unpack(">HH", query[:4])
        # QR, the query's opcode and RD, AA, RA, the response code
        flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
        out = struct.pack(">HHHHHH", qid, flags, 1, len(records), 0, 0)
        out += query[12:qend]
        for rdata in records:
            out += struct.pack(">HHHIH", 0xC00C, qtype, 1, TTL, len(rdata))
            out += rdata
        return out

    def _handle(self, data, addr):
        name, off = _name(data, 12)
        qtype, _ = struct.unpack(">HH", data[off:off + 4])
        qend = off + 4
        zone = "." + self.zone
        if not (name + ".").endswith(zone + "."):
            self._sock.sendto(self._answer(data, qend, qtype, 5, []), addr)
            return
        nx = name.endswith(".nx" + zone)
        if qtype == 15 and name != "mx" + zone:  # MX of a destination
            reply = self._answer(data, qend, qtype, 3 if nx else 0,
                                 [] if nx else
                                 [struct.pack(">H", 10) + _wire("mx" + zone)])
            with self._lock:
                self.mx_asked.add(name)
                if name in self.txt_asked:
                    # the TXT question came first: both out at once
                    self.overlapped.add(name)
                    self._sock.sendto(reply, addr)
                    return
                self._held.setdefault(name, []).append(
                    (time.monotonic() + self.hold, addr, reply))
            return
        records, rcode = [], 3 if nx else 0
        if qtype == 16 and name.startswith("_mta-sts."):
            domain = name[len("_mta-sts."):]
            with self._lock:
                self.txt_asked.add(domain)
                held = self._held.pop(domain, [])
                if held:
                    self.overlapped.add(domain)
                for _, to, reply in held:
                    self._sock.sendto(reply, to)
        elif name == "mx" + zone and qtype == 1:
            records = [socket.inet_aton(self.mx_addr)]
        self._sock.sendto(self._answer(data, qend, qtype, rcode, records),
                          addr)

    def _release(self, everything=False):
        now = time.monotonic()
        with self._lock:
            for domain in list(self._held):
                keep = []
                for deadline, to, reply in self._held[domain]:
                    if everything or deadline <= now:
                        self.released_late.add(domain)
                        self._sock.sendto(reply, to)
                    else:
                        keep.append((deadline, to, reply))
                if keep:
                    self._held[domain] = keep
                else:
                    del self._held[domain]

    def _run(self):
        while not self._stop:
            ready, _, _ = select.select([self._sock], [], [], POLL)
            if ready:
                data, addr = self._sock.recvfrom(4096)
                try:
                    self._handle(data, addr)
                except (ValueError, IndexError, struct.error,
                        UnicodeDecodeError):
                    pass  # not a question this server reads
            self._release()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join(timeout=5)
        self._release(everything=True)
        self._sock.close()
