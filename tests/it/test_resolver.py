"""Next-hop resolution (src/dns/resolver.c) seen from outside: `sluicectl
route user@domain` against a private unbound on loopback (peers/unbound.py)
named by [Transport] Resolver.  MX preference order, random order among
equal preferences, implicit MX, IPv6, null MX, NXDOMAIN, SERVFAIL, MX hosts
without addresses or with address literals as targets, and smart hosts."""
import re
import subprocess

import pytest

from harness import SANITIZER_MARKS, SLUICECTL
from peers.unbound import Unbound

# Equal preferences must show both orders within this many look-ups; two
# hosts give each order with p = 1/2, so a false failure is 2^-(N-1).
SHUFFLE_RUNS = 30

ZONES = ["example.test", "nullmx.test", "relay.test"]
RECORDS = [
    # Three preferences, listed out of order.
    "example.test. MX 20 mx2.example.test.",
    "example.test. MX 10 mx1.example.test.",
    "example.test. MX 30 mx3.example.test.",
    "mx1.example.test. A 127.0.0.2",
    "mx2.example.test. A 127.0.0.3",
    "mx3.example.test. A 127.0.0.4",
    # Equal preference.
    "equal.example.test. MX 10 a.example.test.",
    "equal.example.test. MX 10 b.example.test.",
    "a.example.test. A 127.0.0.5",
    "b.example.test. A 127.0.0.6",
    # No MX: the domain's own address (implicit MX).
    "aonly.example.test. A 127.0.0.7",
    # AAAA before A, per host.
    "six.example.test. MX 10 dual.example.test.",
    "dual.example.test. AAAA ::1",
    "dual.example.test. A 127.0.0.8",
    # The first MX host has no address; the second does.
    "skip.example.test. MX 10 noaddr.example.test.",
    "skip.example.test. MX 20 mx1.example.test.",
    "noaddr.example.test. TXT no-address",
    # No MX host has an address.
    "lost.example.test. MX 10 noaddr.example.test.",
    # An address literal is no MX target.
    "literal.example.test. MX 5 192.0.2.1.",
    "literal.example.test. MX 10 mx2.example.test.",
    # Neither MX nor address.
    "bare.example.test. TXT nothing-here",
    "nullmx.test. MX 0 .",
    "relay1.relay.test. A 127.0.0.10",
    "relay2.relay.test. AAAA ::1",
]

CONF = """[Transport]
QueueDirectory = {d}/q
Resolver = {resolver}
[SendConnector Internet]
AddressSpaces = *
[SendConnector Submission]
AddressSpaces = submission.example.test
Port = 587
[SendConnector Relay]
AddressSpaces = smart.test
DNSRoutingEnabled = false
SmartHosts = relay1.relay.test, [127.0.0.9], relay2.relay.test:2525, [::1]:26
"""


@pytest.fixture(scope="module")
def dns():
    with Unbound(zones=ZONES, records=RECORDS,
                 servfail=["broken.test"]) as server:
        yield server


def route(tmp_path, addr, resolver, *opts):
    conf = tmp_path / "route.conf"
    conf.write_text(CONF.format(d=tmp_path, resolver=resolver))
    p = subprocess.run(
        [str(SLUICECTL), "-c", str(conf), "route", *opts, addr],
        capture_output=True, text=True, timeout=30)
    assert not any(m in p.stderr for m in SANITIZER_MARKS), p.stderr
    hops = [line.split(":", 1)[1].strip() for line in p.stdout.splitlines()
            if line.startswith("NextHops")]
    return p.returncode, hops, p.stdout


def hop_hosts(hops):
    return [h.split(" ", 1)[0] for h in hops]


def test_mx_preference_order(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@example.test", dns.spec)
    assert rc == 0, out
    assert hops == ["mx1.example.test [127.0.0.2]:25 (MX 10)",
                    "mx2.example.test [127.0.0.3]:25 (MX 20)",
                    "mx3.example.test [127.0.0.4]:25 (MX 30)"]
    # The lines sluicectl printed before still come first.
    assert re.search(r"^NextHop   : MX records of example.test", out, re.M)


@pytest.mark.timeout_s(120)
def test_equal_preference_random_order(tmp_path, dns):
    seen = set()
    for _ in range(SHUFFLE_RUNS):
        rc, hops, out = route(tmp_path, "u@equal.example.test", dns.spec)
        assert rc == 0 and len(hops) == 2, out
        seen.add(tuple(hop_hosts(hops)))
        if len(seen) == 2:
            break
    assert seen == {("a.example.test", "b.example.test"),
                    ("b.example.test", "a.example.test")}


def test_implicit_mx(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@aonly.example.test", dns.spec)
    assert rc == 0, out
    assert hops == ["aonly.example.test [127.0.0.7]:25 (implicit MX)"]


def test_aaaa_before_a(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@six.example.test", dns.spec)
    assert rc == 0, out
    assert hops == ["dual.example.test [::1]:25 (MX 10)",
                    "dual.example.test [127.0.0.8]:25 (MX 10)"]


def test_connector_port(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@submission.example.test", dns.spec)
    assert "Submission" in out
    # No such name in the zone: NXDOMAIN, whatever the port.
    assert rc == 1 and "NXDOMAIN" in hops[0]


def test_null_mx(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@nullmx.test", dns.spec)
    assert rc == 1
    assert hops == ["none (null MX: nullmx.test accepts no mail "
                    "(null MX, RFC 7505))"]


def test_nxdomain_is_permanent(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@nowhere.example.test", dns.spec)
    assert rc == 1
    assert hops == ["none (permanent failure: domain nowhere.example.test "
                    "does not exist (NXDOMAIN))"]


def test_no_mx_and_no_address_is_permanent(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@bare.example.test", dns.spec)
    assert rc == 1
    assert hops == ["none (permanent failure: no MX or address for "
                    "bare.example.test)"]


def test_servfail_is_temporary(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@broken.test", dns.spec)
    assert rc == 1
    assert hops == ["none (temporary failure: DNS lookup of broken.test "
                    "failed: SERVFAIL)"]


def test_mx_host_without_address_skipped(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@skip.example.test", dns.spec)
    assert rc == 0, out
    assert hops == ["mx1.example.test [127.0.0.2]:25 (MX 20)"]


def test_no_mx_host_with_address_is_temporary(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@lost.example.test", dns.spec)
    assert rc == 1
    assert hops == ["none (temporary failure: no address for the MX hosts "
                    "of lost.example.test (noaddr.example.test))"]


def test_address_literal_mx_target_skipped(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@literal.example.test", dns.spec)
    assert rc == 0, out
    assert hops == ["mx2.example.test [127.0.0.3]:25 (MX 10)"]


def test_smart_hosts_in_order(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@smart.test", dns.spec)
    assert rc == 0, out
    assert hops == ["relay1.relay.test [127.0.0.10]:25 (smart host)",
                    "127.0.0.9 [127.0.0.9]:25 (smart host)",
                    "relay2.relay.test [::1]:2525 (smart host)",
                    "::1 [::1]:26 (smart host)"]


def test_no_dns_keeps_the_offline_output(tmp_path, dns):
    rc, hops, out = route(tmp_path, "u@example.test", dns.spec, "--no-dns")
    assert rc == 0 and hops == [], out
    assert "MX records of example.test" in out


def test_bad_resolver_spec(tmp_path):
    rc, hops, out = route(tmp_path, "u@example.test", "127.0.0.1:53")
    assert rc == 1
    assert hops == ['none (resolver: Resolver must be "system" or '
                    'ADDRESS@PORT)']


def test_dead_resolver_is_temporary(tmp_path, dns):
    # Nothing listens there: a temporary failure within the bound wait.
    rc, hops, out = route(tmp_path, "u@example.test", "127.0.0.1@9")
    assert rc == 1 and hops[0].startswith("none (temporary failure"), out
