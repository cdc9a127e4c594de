"""`sluicectl route user@domain`, as an administrator runs it: which way a
recipient goes, through which connector and next hop, under which TLS
policy, and why."""
import subprocess

from harness import SLUICECTL

CONF = """[Transport]
QueueDirectory = {d}/q
TLSSendDomainSecureList = partner.example
[AcceptedDomain contoso.com]
[SendConnector Internet]
AddressSpaces = *
[SendConnector Contoso]
AddressSpaces = *.contoso.net;2
RequireTLS = true
TlsAuthLevel = DomainValidation
TlsDomain = *.contoso.net
[SendConnector Relay]
AddressSpaces = relay.example
DNSRoutingEnabled = false
SmartHosts = smtp.relay.example:587, [192.0.2.10]
"""


def route(tmp_path, addr):
    conf = tmp_path / "route.conf"
    conf.write_text(CONF.format(d=tmp_path))
    p = subprocess.run([str(SLUICECTL), "-c", str(conf), "route", addr],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, dict(
        (k.strip(), v.strip()) for k, v in
        (line.split(":", 1) for line in p.stdout.splitlines() if ":" in line))


def test_route_cli(tmp_path):
    rc, r = route(tmp_path, "user@contoso.com")
    assert rc == 0 and r["Route"] == "local mailbox"
    rc, r = route(tmp_path, "a@mx.contoso.net")
    assert r["Route"] == 'SendConnector "Contoso"'
    assert "DomainValidation" in r["TlsPolicy"] and "*.contoso.net" in r["TlsPolicy"]
    assert "MX records of mx.contoso.net" in r["NextHop"]
    rc, r = route(tmp_path, "b@relay.example")
    assert r["NextHop"] == "smart hosts smtp.relay.example:587, [192.0.2.10]:25"
    assert r["TlsPolicy"].startswith("opportunistic")
    rc, r = route(tmp_path, "c@anything.example")
    assert r["Route"] == 'SendConnector "Internet"' and "catch-all" in r["Reason"]
