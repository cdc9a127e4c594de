"""DNSSEC and DANE look-ups (src/dns/resolver.c, src/dns/tlsa.c,
src/tls/tls_dane.c) seen from outside: `sluicectl route` against a private
unbound serving zones signed with ldns-signzone, whose keys are the trust
anchors ([Transport] DnssecTrustAnchorFile).  For each next hop the route
shows the DNSSEC status of the MX and address records, the TLSA records and
what RFC 7672 2.2 makes of them: secure, insecure (an unsigned delegation,
an unsigned zone), bogus (a damaged signature), a SERVFAIL, no TLSA, TLSA
records that are all unusable, a CNAME'd MX (the TLSA base domain is the
expanded name, else the original), and a smart host named by DNS name.
`sluicectl tlsa` prints the record of our own certificate."""
import re
import subprocess

import pytest

from harness import SANITIZER_MARKS, SLUICECTL
from peers.unbound import Unbound, tlsa_rdata


@pytest.fixture(scope="module")
def records(pki):
    """TLSA data of the PKI's certificates, as the zones publish them."""
    return {"server": tlsa_rdata(pki / "server.pem"),
            "wrong": tlsa_rdata(pki / "wrong.pem"),
            "inter": tlsa_rdata(pki / "chain.pem", usage=2, index=1),
            "pkix": tlsa_rdata(pki / "server.pem", usage=1)}


@pytest.fixture(scope="module")
def dns(records):
    t = records
    signed = [
        "dnssec.test. MX 10 mx1.dnssec.test.",
        "mx1.dnssec.test. A 127.0.0.2",
        f"_25._tcp.mx1.dnssec.test. TLSA {t['server']}",
        f"_2525._tcp.mx1.dnssec.test. TLSA {t['wrong']}",
        # A CNAME'd MX: TLSA at the expanded name.
        "cname.dnssec.test. MX 10 alias.dnssec.test.",
        "alias.dnssec.test. CNAME mx1.dnssec.test.",
        # A CNAME'd MX whose target has no TLSA: the original name's.
        "cname2.dnssec.test. MX 10 alias2.dnssec.test.",
        "alias2.dnssec.test. CNAME plain.dnssec.test.",
        "plain.dnssec.test. A 127.0.0.3",
        f"_25._tcp.alias2.dnssec.test. TLSA {t['inter']}",
        # No TLSA at all.
        "notlsa.dnssec.test. MX 10 plain.dnssec.test.",
        # TLSA records that SMTP cannot use (PKIX-EE).
        "unusable.dnssec.test. MX 10 mxpkix.dnssec.test.",
        "mxpkix.dnssec.test. A 127.0.0.4",
        f"_25._tcp.mxpkix.dnssec.test. TLSA {t['pkix']}",
        # An unsigned delegation below the signed zone.
        "insecure.dnssec.test. MX 10 mx.unsigned.dnssec.test.",
        # Damaged signatures: on TLSA records, on an address.
        "bogustlsa.dnssec.test. MX 10 mxbt.dnssec.test.",
        "mxbt.dnssec.test. A 127.0.0.5",
        "bogusaddr.dnssec.test. MX 10 mxba.dnssec.test.",
        "bogusaddr.dnssec.test. MX 20 mx1.dnssec.test.",
        # TLSA records whose look-up fails.
        "servfail.dnssec.test. MX 10 mxsf.dnssec.test.",
        "mxsf.dnssec.test. A 127.0.0.7",
    ]
    with Unbound(
            zones=["other.test"],
            records=["other.test. MX 10 mx1.dnssec.test.",
                     "plain.other.test. MX 10 mx.other.test.",
                     "mx.other.test. A 127.0.0.8"],
            servfail=["_tcp.mxsf.dnssec.test"],
            signed={"dnssec.test": signed},
            insecure={"unsigned.dnssec.test": [
                "mx.unsigned.dnssec.test. A 127.0.0.9",
                f"_25._tcp.mx.unsigned.dnssec.test. TLSA {t['server']}"]},
            bogus=[f"_25._tcp.mxbt.dnssec.test. TLSA {t['server']}",
                   "mxba.dnssec.test. A 127.0.0.6"]) as server:
        yield server


CONF = """[Transport]
QueueDirectory = {d}/q
Resolver = {resolver}
DnssecTrustAnchorFile = {anchor}
[Certificate mx]
CertificateFile = {pki}/server.pem
KeyFile = {pki}/server.key
[SendConnector Internet]
AddressSpaces = *
SmtpDaneMode = {mode}
[SendConnector Relay]
AddressSpaces = relay.test
DNSRoutingEnabled = false
SmartHosts = mx1.dnssec.test:2525, plain.dnssec.test
"""


def sluicectl(tmp_path, dns, pki, *args, mode="Opportunistic", anchor=None):
    conf = tmp_path / "dane.conf"
    conf.write_text(CONF.format(
        d=tmp_path, resolver=dns.spec, pki=pki, mode=mode,
        anchor=dns.anchor_path if anchor is None else anchor))
    p = subprocess.run([str(SLUICECTL), "-c", str(conf), *args],
                       capture_output=True, text=True, timeout=60)
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    return p


def route(tmp_path, dns, pki, addr, **kw):
    p = sluicectl(tmp_path, dns, pki, "route", addr, **kw)
    return p.stdout + p.stderr


def dane_lines(out):
    """{host: (need, reason)} from the "Dane" lines."""
    found = {}
    for m in re.finditer(r"^Dane +: (\S+): (\w+): (.*)$", out, re.M):
        found[m.group(1)] = (m.group(2), m.group(3))
    return found


def tlsa_lines(out):
    return re.findall(r"^Tlsa +: (\S+) (.*)$", out, re.M)


def test_secure_mx_with_tlsa(tmp_path, dns, pki, records):
    out = route(tmp_path, dns, pki, "u@dnssec.test")
    assert re.search(r"^Dnssec +: validating with ", out, re.M), out
    assert re.search(r"^MxDnssec +: secure$", out, re.M), out
    assert dane_lines(out)["mx1.dnssec.test"][0] == "verify", out
    assert tlsa_lines(out) == [("_25._tcp.mx1.dnssec.test",
                                records["server"])], out


def test_cname_mx_uses_the_expanded_name(tmp_path, dns, pki, records):
    out = route(tmp_path, dns, pki, "u@cname.dnssec.test")
    assert dane_lines(out)["alias.dnssec.test"][0] == "verify", out
    assert tlsa_lines(out) == [("_25._tcp.mx1.dnssec.test",
                                records["server"])], out


def test_cname_mx_falls_back_to_the_original_name(tmp_path, dns, pki,
                                                  records):
    out = route(tmp_path, dns, pki, "u@cname2.dnssec.test")
    assert dane_lines(out)["alias2.dnssec.test"][0] == "verify", out
    assert tlsa_lines(out) == [("_25._tcp.alias2.dnssec.test",
                                records["inter"])], out


def test_no_tlsa_means_no_dane_unless_mandatory(tmp_path, dns, pki):
    out = route(tmp_path, dns, pki, "u@notlsa.dnssec.test")
    need, why = dane_lines(out)["plain.dnssec.test"]
    assert need == "off" and "has no TLSA records" in why, out
    out = route(tmp_path, dns, pki, "u@notlsa.dnssec.test",
                mode="Mandatory")
    need, why = dane_lines(out)["plain.dnssec.test"]
    assert need == "skip" and "Mandatory" in why, out


def test_unusable_tlsa_requires_tls_without_authentication(tmp_path, dns,
                                                           pki, records):
    out = route(tmp_path, dns, pki, "u@unusable.dnssec.test")
    need, why = dane_lines(out)["mxpkix.dnssec.test"]
    assert need == "encrypt" and "unusable" in why, out
    assert tlsa_lines(out) == [("_25._tcp.mxpkix.dnssec.test",
                                records["pkix"] + " (unusable)")], out


def test_unsigned_delegation_is_insecure(tmp_path, dns, pki):
    out = route(tmp_path, dns, pki, "u@insecure.dnssec.test")
    assert re.search(r"^MxDnssec +: secure$", out, re.M), out
    need, why = dane_lines(out)["mx.unsigned.dnssec.test"]
    assert need == "off" and "not DNSSEC-signed" in why, out
    # Its TLSA records are not even looked up: unsigned ones mean nothing.
    assert tlsa_lines(out) == [], out


def test_insecure_mx_to_a_secure_host_keeps_dane(tmp_path, dns, pki):
    """Postfix >= 3.6 (smtp_tls_dane_insecure_mx_policy = dane): the
    host's own secure TLSA records apply even when the MX RRset that
    named it is unsigned."""
    out = route(tmp_path, dns, pki, "u@other.test")
    assert re.search(r"^MxDnssec +: insecure$", out, re.M), out
    assert dane_lines(out)["mx1.dnssec.test"][0] == "verify", out
    out = route(tmp_path, dns, pki, "u@plain.other.test")
    need, why = dane_lines(out)["mx.other.test"]
    assert need == "off" and "not DNSSEC-signed" in why, out


def test_bogus_tlsa_skips_the_host(tmp_path, dns, pki):
    out = route(tmp_path, dns, pki, "u@bogustlsa.dnssec.test")
    need, why = dane_lines(out)["mxbt.dnssec.test"]
    assert need == "skip" and "failed DNSSEC validation" in why, out


def test_bogus_address_is_never_a_next_hop(tmp_path, dns, pki):
    out = route(tmp_path, dns, pki, "u@bogusaddr.dnssec.test")
    hops = re.findall(r"^NextHops +: (\S+)", out, re.M)
    assert hops == ["mx1.dnssec.test"], out


def test_servfail_on_tlsa_skips_the_host(tmp_path, dns, pki):
    out = route(tmp_path, dns, pki, "u@servfail.dnssec.test")
    need, why = dane_lines(out)["mxsf.dnssec.test"]
    assert need == "skip" and "could not be looked up" in why, out


def test_smart_host_by_name_gets_dane_on_its_port(tmp_path, dns, pki,
                                                  records):
    out = route(tmp_path, dns, pki, "u@relay.test")
    assert "MxDnssec" not in out, out
    lines = dane_lines(out)
    assert lines["mx1.dnssec.test"][0] == "verify", out
    assert lines["plain.dnssec.test"][0] == "off", out
    assert ("_2525._tcp.mx1.dnssec.test", records["wrong"]) in \
        tlsa_lines(out), out


def test_dane_mode_none_looks_nothing_up(tmp_path, dns, pki):
    out = route(tmp_path, dns, pki, "u@dnssec.test", mode="None")
    assert dane_lines(out)["mx1.dnssec.test"][0] == "off", out
    assert tlsa_lines(out) == [], out


def test_without_trust_anchor_everything_is_insecure(tmp_path, dns, pki):
    out = route(tmp_path, dns, pki, "u@dnssec.test", anchor="")
    assert re.search(r"^Dnssec +: not validating", out, re.M), out
    assert re.search(r"^MxDnssec +: insecure$", out, re.M), out
    assert dane_lines(out)["mx1.dnssec.test"][0] == "off", out


def test_bad_trust_anchor_file_is_a_config_error(tmp_path, dns, pki):
    bad = tmp_path / "nothing-here.key"
    p = sluicectl(tmp_path, dns, pki, "config", "check", anchor=str(bad))
    assert p.returncode != 0
    assert re.search(r"dane\.conf:\d+: DnssecTrustAnchorFile .*No such "
                     r"file", p.stdout + p.stderr), p.stdout + p.stderr


def test_tlsa_of_our_certificate(tmp_path, dns, pki, records):
    p = sluicectl(tmp_path, dns, pki, "tlsa", "mx")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[1] == records["server"], p.stdout
    # one record per DNS name of the certificate (server.pem names
    # mx.sluice.test and localhost)
    assert f"_25._tcp.mx.sluice.test. IN TLSA {records['server']}" in \
        lines, p.stdout
    p = sluicectl(tmp_path, dns, pki, "tlsa", "mx", "587")
    assert f"_587._tcp.mx.sluice.test. IN TLSA {records['server']}" in \
        p.stdout.splitlines(), p.stdout
    p = sluicectl(tmp_path, dns, pki, "tlsa", "nosuch")
    assert p.returncode == 1 and "no [Certificate nosuch]" in p.stderr
