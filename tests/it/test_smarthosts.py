"""Smart hosts as Exchange writes them (issue 11): `SmartHosts = 10.10.10.1`
is an address, like `[10.10.10.1]`, in every form -- IPv4 or IPv6, with or
without brackets, with or without a port.  Mail is delivered to it and the
resolver is never asked about the address: a private unbound that logs
every query it gets sees none but its own readiness probe, and
`sluicectl route` answers at once with a resolver that does not exist."""
import re

import pytest

from harness import free_port, run_ctl, running
from peers.fakesmtp import FakeSmtp
from peers.unbound import Unbound
from test_delivery import RELAY, send, wait_for

# (SmartHosts value, Port of the connector, address the fake next hop
# listens on); {port} is the fake next hop's port.
FORMS = {
    "ipv4-bare": ("127.0.0.1", "{port}", "127.0.0.1"),
    "ipv4-port": ("127.0.0.1:{port}", "25", "127.0.0.1"),
    "ipv4-brackets-port": ("[127.0.0.1]:{port}", "25", "127.0.0.1"),
    "ipv6-bare": ("::1", "{port}", "::1"),
    "ipv6-brackets-port": ("[::1]:{port}", "25", "::1"),
    "ipv6-tagged": ("[IPv6:0:0:0:0:0:0:0:1]:{port}", "25", "::1"),
}


def queried_names(dns):
    """Names the private unbound was asked about (log-queries lines)."""
    return re.findall(r"info: \S+ (\S+) [A-Z]+ IN$", dns.log_text(), re.M)


def connector(value, port):
    return f"""
[SendConnector Relay]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = {value}
Port = {port}
"""


@pytest.mark.parametrize("form", sorted(FORMS))
def test_address_smarthost_delivered_without_dns(tmp_path, form):
    value, port, listen = FORMS[form]
    with Unbound(zones=["example.test"]) as dns, \
            FakeSmtp(host=listen) as mx:
        extra = connector(value.format(port=mx.port), port.format(
            port=mx.port))
        with running(tmp_path, conn=RELAY, raw_extra=extra,
                     transport={"Resolver": dns.spec}) as s:
            p = run_ctl("-c", s.conf_path, "config", "check")
            assert p.returncode == 0, p.stdout + p.stderr
            send(s, ["bob@remote.test"], f"smart host {form}")
            (m,) = mx.wait_messages(1, timeout=20)
            assert m.rcpts == ["bob@remote.test"]
            assert wait_for(lambda: all(r["status"] == 1
                                        for r in s.recipients()))
        # Only unbound's own readiness probe, and the receive side's
        # reverse look-up of the submitting client: never the smart host.
        names = [n for n in queried_names(dns) if not n.endswith(".arpa.")]
        assert names == ["localhost."] * len(names), dns.log_text()


def test_route_shows_address_smarthost_without_dns(tmp_path):
    """sluicectl route prints the address as the next hop; the resolver
    points at a port where nothing answers, so any look-up would end in
    "no answer" instead."""
    conf = tmp_path / "route.conf"
    conf.write_text(f"""[Transport]
QueueDirectory = {tmp_path}/q
Resolver = 127.0.0.1@{free_port()}
[SendConnector Relay]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = 10.10.10.1, 2001:db8::1, [192.0.2.7]:2525
""")
    p = run_ctl("-c", conf, "route", "bob@remote.example")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = dict(ln.split(":", 1) for ln in p.stdout.splitlines()
                 if ":" in ln and not ln.startswith("NextHops"))
    assert lines["NextHop   "].strip() == (
        "smart hosts [10.10.10.1]:25, [2001:db8::1]:25, [192.0.2.7]:2525"), \
        p.stdout
    hops = [ln.split(":", 1)[1].strip() for ln in p.stdout.splitlines()
            if ln.startswith("NextHops")]
    assert hops == ["10.10.10.1 [10.10.10.1]:25 (smart host)",
                    "2001:db8::1 [2001:db8::1]:25 (smart host)",
                    "192.0.2.7 [192.0.2.7]:2525 (smart host)"], p.stdout


def test_config_dump_writes_addresses_in_brackets(tmp_path):
    """The dump says [address] for every address form, and loads again."""
    conf = tmp_path / "s.conf"
    conf.write_text(f"""[Transport]
QueueDirectory = {tmp_path}/q
[SendConnector Relay]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = 10.10.10.1, ::1, relay.example:587, 10.0.0.2:2525
""")
    p = run_ctl("-c", conf, "config", "dump")
    assert p.returncode == 0, p.stderr
    assert ("SmartHosts = [10.10.10.1], [::1], relay.example:587, "
            "[10.0.0.2]:2525") in p.stdout, p.stdout
    again = tmp_path / "again.conf"
    again.write_text(p.stdout)
    q = run_ctl("-c", again, "config", "dump")
    assert q.returncode == 0, q.stderr
    assert q.stdout.splitlines()[1:] == p.stdout.splitlines()[1:]


@pytest.mark.parametrize("value,words", [
    ("10.10.10.256", "not a host name or an IP address"),
    ("2001:db8::g", "not an IPv6 address"),
    ("[relay.example]", "not an IPv4 or IPv6 address"),
    ("10.10.10.1:99999", "bad port"),
])
def test_bad_smarthost_quoted_with_line(tmp_path, value, words):
    conf = tmp_path / "s.conf"
    conf.write_text(f"""[Transport]
QueueDirectory = {tmp_path}/q
[SendConnector Relay]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = relay.example, {value}
""")
    p = run_ctl("-c", conf, "config", "check")
    assert p.returncode == 1
    (line,) = [ln for ln in p.stderr.splitlines() if "s.conf:6: " in ln]
    assert f"s.conf:6: SmartHosts: {words}" in line, p.stderr
    assert line.endswith(f': "{value}"'), p.stderr  # the item, not the list
