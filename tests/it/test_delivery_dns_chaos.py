"""Routing by DNS at random: a private unbound serves eight domains, each
with a random fate (one to three MX hosts with random preferences, an
implicit MX, a null MX, a name that does not exist, a lookup that fails),
and the hosts are fake next hops that mostly work, sometimes defer, or are
not there at all.  Mail flows to all of them at once with a fast retry
schedule and a short expiry.  Every recipient must settle: delivered (and
then one of its domain's hosts has it), or returned; a null MX or a name
that does not exist is never delivered; the daemon stops cleanly under
ASan/UBSan.  Seeds are fixed, so a failure replays."""
import random
from contextlib import ExitStack

import pytest

from harness import free_port, running
from peers.fakesmtp import FakeSmtp
from peers.unbound import Unbound
from test_delivery import RELAY, send, wait_for
from test_delivery_dns import dns_connector

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]
DOMAINS = 8
MESSAGES = 12


def fates(rng):
    """domain -> (fate, hosts it may reach), and the zone's records."""
    out, records = {}, []
    for i in range(DOMAINS):
        d = f"d{i}.chaos.test"
        fate = rng.choice(["mx", "mx", "mx", "implicit", "null", "nx",
                           "servfail"])
        hosts = []
        if fate == "mx":
            for j, h in enumerate(rng.sample(HOSTS, rng.randint(1, 3))):
                records += [f"{d}. MX {rng.choice([10, 20]) + j} h{j}.{d}.",
                            f"h{j}.{d}. A {h}"]
                hosts.append(h)
        elif fate == "implicit":
            h = rng.choice(HOSTS)
            records.append(f"{d}. A {h}")
            hosts.append(h)
        elif fate == "null":
            records.append(f"{d}. MX 0 .")
        elif fate == "servfail":
            d = f"d{i}.broken.test"
        out[d] = (fate, hosts)
    return out, records


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("seed", [1, 2])
def test_random_dns_routes(tmp_path, seed):
    rng = random.Random(seed)
    port = free_port()
    domains, records = fates(rng)
    with ExitStack() as stack:
        dns = stack.enter_context(Unbound(zones=["chaos.test"],
                                          records=records,
                                          servfail=["broken.test"]))
        servers = {}
        for h in HOSTS:
            if rng.random() < 0.25:
                continue  # nothing listens there
            replies = {"RCPT": [rng.choice(["250 2.1.5 ok"] * 3 +
                                           ["450 4.2.1 busy"])
                                for _ in range(4)] + ["250 2.1.5 ok"]}
            servers[h] = stack.enter_context(
                FakeSmtp(host=h, port=port, replies=replies))
        s = stack.enter_context(running(tmp_path, conn=RELAY, transport={
            "Resolver": dns.spec,
            "TransientFailureRetryInterval": "1s",
            "OutboundConnectionFailureRetryInterval": "1s",
            "MessageExpirationTimeout": "6s"},
            raw_extra=dns_connector(port)))
        names = sorted(domains)
        for n in range(MESSAGES):
            a, b = rng.choice(names), rng.choice(names)
            send(s, [f"m{n}x@{a}", f"m{n}y@{b}"], f"dns chaos {seed} {n}")

        def ours(r):
            return r["addr"].split("@")[1] in domains

        assert wait_for(lambda: all(r["status"] != 0
                                    for r in s.recipients() if ours(r)),
                        timeout=60), \
            [(r["addr"], r["last_error"]) for r in s.recipients()
             if ours(r) and r["status"] == 0][:5]
        for r in s.recipients():
            if not ours(r):
                continue
            fate, hosts = domains[r["addr"].split("@")[1]]
            if fate in ("null", "nx"):
                assert r["status"] == 2, (fate, r)
            if r["status"] == 1:
                assert any(servers[h].delivered()[r["addr"]] >= 1
                           for h in hosts if h in servers), (fate, r)
