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


# What `sluicectl route ADDRESS` says of each case: its exit status, its
# NextHops lines in order, and a line it must print as well (a regular
# expression, or None).  `resolver` None is the test unbound above.
ROUTES = [
    pytest.param(
        "u@example.test", (), None, 0,
        ["mx1.example.test [127.0.0.2]:25 (MX 10)",
         "mx2.example.test [127.0.0.3]:25 (MX 20)",
         "mx3.example.test [127.0.0.4]:25 (MX 30)"],
        # the lines sluicectl printed before still come first
        r"^NextHop   : MX records of example.test",
        id="mx-preference-order"),
    pytest.param(
        "u@aonly.example.test", (), None, 0,
        ["aonly.example.test [127.0.0.7]:25 (implicit MX)"], None,
        id="implicit-mx"),
    pytest.param(
        "u@six.example.test", (), None, 0,
        ["dual.example.test [::1]:25 (MX 10)",
         "dual.example.test [127.0.0.8]:25 (MX 10)"], None,
        id="aaaa-before-a"),
    # No such name in the zone: NXDOMAIN, whatever the connector's port.
    pytest.param(
        "u@submission.example.test", (), None, 1,
        ["none (permanent failure: domain submission.example.test does "
         "not exist (NXDOMAIN))"], "Submission",
        id="connector-port"),
    pytest.param(
        "u@nullmx.test", (), None, 1,
        ["none (null MX: nullmx.test accepts no mail (null MX, RFC 7505))"],
        None, id="null-mx"),
    pytest.param(
        "u@nowhere.example.test", (), None, 1,
        ["none (permanent failure: domain nowhere.example.test does not "
         "exist (NXDOMAIN))"], None,
        id="nxdomain-is-permanent"),
    pytest.param(
        "u@bare.example.test", (), None, 1,
        ["none (permanent failure: no MX or address for "
         "bare.example.test)"], None,
        id="no-mx-and-no-address-is-permanent"),
    pytest.param(
        "u@broken.test", (), None, 1,
        ["none (temporary failure: DNS lookup of broken.test failed: "
         "SERVFAIL)"], None,
        id="servfail-is-temporary"),
    pytest.param(
        "u@skip.example.test", (), None, 0,
        ["mx1.example.test [127.0.0.2]:25 (MX 20)"], None,
        id="mx-host-without-address-skipped"),
    pytest.param(
        "u@lost.example.test", (), None, 1,
        ["none (temporary failure: no address for the MX hosts of "
         "lost.example.test (noaddr.example.test))"], None,
        id="no-mx-host-with-address-is-temporary"),
    pytest.param(
        "u@literal.example.test", (), None, 0,
        ["mx2.example.test [127.0.0.3]:25 (MX 10)"], None,
        id="address-literal-mx-target-skipped"),
    pytest.param(
        "u@smart.test", (), None, 0,
        ["relay1.relay.test [127.0.0.10]:25 (smart host)",
         "127.0.0.9 [127.0.0.9]:25 (smart host)",
         "relay2.relay.test [::1]:2525 (smart host)",
         "::1 [::1]:26 (smart host)"], None,
        id="smart-hosts-in-order"),
    pytest.param(
        "u@example.test", ("--no-dns",), None, 0, [],
        "MX records of example.test",
        id="no-dns-keeps-the-offline-output"),
    pytest.param(
        "u@example.test", (), "127.0.0.1:53", 1,
        ['none (resolver: Resolver must be "system" or ADDRESS@PORT)'],
        None, id="bad-resolver-spec"),
]


@pytest.mark.parametrize("addr,opts,resolver,rc,hops,prints", ROUTES)
def test_route(tmp_path, dns, addr, opts, resolver, rc, hops, prints):
    got_rc, got_hops, out = route(tmp_path, addr, resolver or dns.spec,
                                  *opts)
    assert (got_rc, got_hops) == (rc, hops), out
    assert prints is None or re.search(prints, out, re.M), out


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


def test_dead_resolver_is_temporary(tmp_path, dns):
    # Nothing listens there: a temporary failure within the bound wait.
    rc, hops, out = route(tmp_path, "u@example.test", "127.0.0.1@9")
    assert rc == 1 and hops[0].startswith("none (temporary failure"), out
