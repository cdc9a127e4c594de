#!/usr/bin/python3
"""A local HTTPS server for MTA-STS policies (RFC 8461 3.3) in the tests.

`MtaStsServer` is Python's http.server with ssl, on 127.0.0.1 and a free
port, in a thread of the test.  It answers GET /.well-known/mta-sts.txt
for every "mta-sts.DOMAIN" host with what the test set for DOMAIN, and
counts the requests per domain, so tests can wait for a fetch (or prove
there was none) by counting.  sluiced and sluicectl are pointed at it with
the environment variable SLUICE_MTA_STS_PORT (policies are fetched from
port 443 otherwise) and with DNS records from peers/unbound.py:

    with MtaStsServer(pki, ["good.test", "broken.test"]) as web:
        web.set("good.test", policy("enforce", ["mx.good.test"]))
        web.set("broken.test", "this is no policy")
        env = {"SLUICE_MTA_STS_PORT": str(web.port)}
        records = web.dns_records("good.test", "id1")

What a domain can be given (Behaviour):
- body, status, content_type: the answer (defaults: 200, text/plain);
- delay: seconds to wait before answering (a slow server);
- location: a 3xx redirect to there;
- cert: "good" (a certificate from the test CA naming mta-sts.DOMAIN for
  every domain given at start), "wrong" (the PKI's wrong.pem, another
  name), "untrusted" (the PKI's self-signed self.pem).
"""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WELL_KNOWN = "/.well-known/mta-sts.txt"


def policy(mode, mx, max_age=86400, eol="\r\n", extra=""):
    """A valid policy text."""
    lines = ["version: STSv1", f"mode: {mode}"]
    lines += [f"mx: {m}" for m in mx]
    lines += [f"max_age: {max_age}"]
    return eol.join(lines) + eol + extra


class Behaviour:
    def __init__(self, body="", status=200, content_type="text/plain",
                 delay=0.0, location=None, cert="good"):
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.content_type = content_type
        self.delay = delay
        self.location = location
        self.cert = cert


class _Handler(BaseHTTPRequestHandler):
    server_version = "mtasts-test/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_GET(self):
        srv = self.server.owner
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        domain = host[len("mta-sts."):] if host.startswith("mta-sts.") \
            else host
        srv._count(domain, self.path)
        b = srv.behaviour(domain)
        if b is None or self.path != WELL_KNOWN:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if b.delay:
            time.sleep(b.delay)
        self.send_response(b.status)
        if b.location:
            self.send_header("Location", b.location)
        if b.content_type:
            self.send_header("Content-Type", b.content_type)
        self.send_header("Content-Length", str(len(b.body)))
        self.end_headers()
        try:
            self.wfile.write(b.body)
        except OSError:
            pass  # the client gave up (too big, too slow): fine


class MtaStsServer:
    def __init__(self, pki, domains, host="127.0.0.1"):
        self.pki = Path(pki)
        self.domains = [d.lower() for d in domains]
        self.host = host
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-mtasts-"))
        self._lock = threading.Lock()
        self._behaviour = {}
        self._hits = {}
        self.httpd = None
        self.thread = None
        self.port = None

    # configuration ---------------------------------------------------

    def set(self, domain, body=None, **kw):
        """What DOMAIN's policy URL answers from now on."""
        b = Behaviour(body if body is not None else "", **kw)
        with self._lock:
            self._behaviour[domain.lower()] = b

    def behaviour(self, domain):
        with self._lock:
            return self._behaviour.get(domain)

    def _count(self, domain, path):
        with self._lock:
            self._hits[domain] = self._hits.get(domain, 0) + 1

    def hits(self, domain):
        """Requests seen for DOMAIN's policy so far."""
        with self._lock:
            return self._hits.get(domain.lower(), 0)

    def wait_hits(self, domain, n, timeout=30.0):
        """Poll until DOMAIN was fetched at least n times; the count."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.hits(domain) >= n:
                break
            time.sleep(0.05)
        return self.hits(domain)

    def dns_records(self, domain, policy_id, ttl=1, address=None):
        """The TXT and address records that point sluiced here."""
        return [f"_mta-sts.{domain}. {ttl} IN TXT "
                f"\"v=STSv1; id={policy_id};\"",
                f"mta-sts.{domain}. {ttl} IN A {address or self.host}"]

    # certificates ------------------------------------------------------

    def _make_cert(self):
        """A certificate from the test CA for every mta-sts.DOMAIN."""
        key, csr, pem = (self.dir / n for n in ("web.key", "web.csr",
                                                 "web.pem"))
        san = ",".join(f"DNS:mta-sts.{d}" for d in self.domains)
        ext = self.dir / "web.ext"
        ext.write_text(f"subjectAltName={san}\n"
                       "extendedKeyUsage=serverAuth\n")
        run = dict(check=True, capture_output=True, timeout=30)
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC",
                        "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-out", str(key)], **run)
        subprocess.run(["openssl", "req", "-new", "-key", str(key),
                        "-subj", "/CN=mta-sts test", "-out", str(csr)],
                       **run)
        subprocess.run(["openssl", "x509", "-req", "-in", str(csr),
                        "-CA", str(self.pki / "ca.pem"),
                        "-CAkey", str(self.pki / "ca.key"),
                        "-set_serial", str(int(time.time() * 1000)),
                        "-days", "30", "-extfile", str(ext),
                        "-out", str(pem)], **run)
        return pem, key

    def _contexts(self):
        def ctx(pem, key):
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            c.minimum_version = ssl.TLSVersion.TLSv1_2
            c.load_cert_chain(str(pem), str(key))
            return c
        pem, key = self._make_cert()
        return {"good": ctx(pem, key),
                "wrong": ctx(self.pki / "wrong.pem", self.pki / "wrong.key"),
                "untrusted": ctx(self.pki / "self.pem",
                                 self.pki / "self.key")}

    # process control ---------------------------------------------------

    def start(self):
        ctxs = self._contexts()
        main = ctxs["good"]

        def pick(sslsock, server_name, _ctx):
            name = (server_name or "").lower()
            domain = name[len("mta-sts."):] if name.startswith(
                "mta-sts.") else name
            b = self.behaviour(domain)
            if b is not None and b.cert in ctxs:
                sslsock.context = ctxs[b.cert]
        main.sni_callback = pick
        self.httpd = ThreadingHTTPServer((self.host, 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.httpd.socket = main.wrap_socket(self.httpd.socket,
                                             server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.httpd = None

    def close(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    import sys
    with MtaStsServer(sys.argv[1], ["example.test"]) as web:
        web.set("example.test", policy("enforce", ["mx.example.test"]))
        print(web.port, flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    os._exit(0)
