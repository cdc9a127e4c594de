"""Outbound TLS at random: four next hops, each with a random STARTTLS
behaviour (working, stripped, closed, garbage, plaintext injected, refused
with 454), random extensions and random temporary failures, behind four
send connectors with random TLS policies (opportunistic, IgnoreSTARTTLS,
RequireTLS with EncryptionOnly or CertificateValidation).  Mail flows to
all of them at once with a fast retry schedule and a short expiry.  Then:
- every recipient settles (delivered, or returned when it expires);
- a connector that requires TLS never sends MAIL or RCPT in plaintext, and
  what it delivered arrived over TLS;
- a connector with IgnoreSTARTTLS never issues STARTTLS;
- the daemon survives under ASan/UBSan and stops cleanly.
Seeds are fixed, so a failure replays."""
import random
from contextlib import ExitStack

import pytest

from harness import running
from peers.fakesmtp import FakeSmtp, server_context
from test_delivery import RELAY, send, wait_for

POLICIES = {
    "opportunistic": "",
    "ignore": "IgnoreSTARTTLS = true",
    "encryption": "RequireTLS = true\nTlsAuthLevel = EncryptionOnly",
    "certificate": "RequireTLS = true\nTlsAuthLevel = CertificateValidation",
}
HOPS = 4
MESSAGES = 12


def hop(rng, pki):
    mode = rng.choice(["ok", "ok", "strip", "close", "garbage", "inject",
                       "refused"])
    caps = [c for c in ("PIPELINING", "CHUNKING", "8BITMIME") if
            rng.random() < 0.5]
    replies = {
        "RCPT": [rng.choice(["250 2.1.5 ok"] * 3 + ["450 4.2.1 busy"])
                 for _ in range(6)] + ["250 2.1.5 ok"],
        "end-of-data": [rng.choice(["250 2.0.0 ok"] * 3 + ["451 4.3.0 later"])
                        for _ in range(4)] + ["250 2.0.0 ok"],
    }
    kw = {"starttls": mode}
    if mode == "refused":
        kw = {}
        replies["STARTTLS"] = "454 4.7.0 TLS not available"
    return mode, FakeSmtp(capabilities=tuple(caps),
                          tls=server_context(pki, "server"),
                          replies=replies, **kw)


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_tls_next_hops(tmp_path, pki, seed):
    rng = random.Random(seed)
    with ExitStack() as stack:
        hops = []
        extra = ""
        for i in range(HOPS):
            mode, fake = hop(rng, pki)
            mx = stack.enter_context(fake)
            policy = rng.choice(sorted(POLICIES))
            hops.append((mode, policy, mx))
            extra += f"""
[SendConnector c{i}]
AddressSpaces = c{i}.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{mx.port}
Fqdn = out.sluice.test
{POLICIES[policy]}
"""
        s = stack.enter_context(running(tmp_path, conn=RELAY, transport={
            "TrustedCAFile": f"{pki}/trusted.pem",
            "TransientFailureRetryInterval": "1s",
            "OutboundConnectionFailureRetryInterval": "1s",
            "MessageExpirationTimeout": "6s"}, raw_extra=extra))
        for n in range(MESSAGES):
            a, b = rng.randrange(HOPS), rng.randrange(HOPS)
            send(s, [f"m{n}x@c{a}.test", f"m{n}y@c{b}.test"],
                 f"tls chaos {seed} {n}")
        assert wait_for(lambda: all(r["status"] != 0 for r in s.recipients()
                                    if ".test" in r["addr"] and
                                    r["addr"].split("@")[1].startswith("c")),
                        timeout=60), \
            [r for r in s.recipients() if r["status"] == 0][:5]

        states = {r["addr"]: r["status"] for r in s.recipients()}
        for i, (mode, policy, mx) in enumerate(hops):
            where = f"c{i}: {policy} against STARTTLS {mode}"
            if policy == "ignore":
                for sess in mx.sessions:
                    assert "STARTTLS" not in sess.verbs(), where
            if policy in ("encryption", "certificate"):
                for sess in mx.sessions:
                    assert "MAIL" not in sess.verbs(tls=False), where
                    assert "RCPT" not in sess.verbs(tls=False), where
                assert all(m.tls for m in mx.accepted()), where
            delivered = mx.delivered()
            for addr, status in states.items():
                if addr.endswith(f"@c{i}.test") and status == 1:
                    assert delivered[addr] >= 1, (where, addr)
