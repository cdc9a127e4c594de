"""Hostile next hops at random: one fake server answers each command from
a random list of good, temporary, permanent, malformed and absurd replies
(overlong lines, endless replies, garbage, changing codes, bare LF,
connections closed mid-reply, short stalls), with random extensions.
sluiced relays a burst of messages through it with a fast retry schedule.
Whatever happens, the daemon survives under ASan/UBSan and stops cleanly,
and every recipient ends in a state with a reason: delivered, returned,
or waiting with the last error.  Seeds are fixed, so a failure replays."""
import random

import pytest

from harness import running
from peers.fakesmtp import (BARE_LF, CLOSE, CODE_CHANGE, ENDLESS, GARBAGE,
                            OVERLONG, FakeSmtp, close_after, delayed)
from test_delivery import RELAY, send, smarthost, wait_for

MESSAGES = 12


def pool(rng, good, temp, perm):
    """A random list of replies for one command: mostly sensible ones."""
    hostile = [OVERLONG, GARBAGE, CODE_CHANGE, BARE_LF, CLOSE, ENDLESS,
               close_after(b"250-PIPEL"), delayed(0.3, good)]
    choices = [good] * 6 + [temp] * 2 + [perm] + hostile
    return [rng.choice(choices) for _ in range(rng.randint(3, 8))] + [good]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_hostile_next_hop(tmp_path, seed):
    rng = random.Random(seed)
    caps = [c for c in ("PIPELINING", "CHUNKING", "8BITMIME", "DSN",
                        "SMTPUTF8", "ENHANCEDSTATUSCODES")
            if rng.random() < 0.6]
    replies = {
        "banner": pool(rng, "220 fake.test ESMTP", "421 4.3.2 busy",
                       "554 5.7.1 go away"),
        "EHLO": pool(rng, "250-fake.test\n250 PIPELINING",
                     "421 4.3.2 later", "502 5.5.1 no EHLO"),
        "MAIL": pool(rng, "250 2.1.0 ok", "451 4.3.0 later",
                     "550 5.7.1 refused"),
        "RCPT": pool(rng, "250 2.1.5 ok", "450 4.2.1 busy",
                     "550 5.1.1 unknown"),
        "DATA": pool(rng, "354 go ahead", "451 4.3.0 later",
                     "554 5.6.0 no"),
        "end-of-data": pool(rng, "250 2.0.0 queued", "452 4.3.1 full",
                            "554 5.6.0 rejected"),
        "BDAT": pool(rng, "250 2.0.0 queued", "452 4.3.1 full",
                     "554 5.6.0 rejected"),
    }
    with FakeSmtp(capabilities=tuple(caps), replies=replies,
                  endless_limit=3000) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TransientFailureRetryInterval": "1s",
                "TransientFailureRetryAttempts": 3,
                "OutboundConnectionFailureRetryInterval": "1s",
                "MessageExpirationTimeout": "6s"},
                raw_extra=smarthost(mx.port, extra=
                                    "ConnectionInactivityTimeout = 00:00:02")) \
            as s:
        for i in range(MESSAGES):
            send(s, [f"r{i}a@remote.test", f"r{i}b@remote.test"],
                 f"chaos {seed} {i}")
        # expiry after 6 s settles everything that keeps failing
        assert wait_for(lambda: all(r["status"] != 0
                                    for r in s.recipients()
                                    if r["addr"].endswith("@remote.test")),
                        timeout=60), s.recipients()
        for r in s.recipients():
            if r["addr"].endswith("@remote.test") and r["status"] == 2:
                assert r["last_error"], r
        assert s.alive()
        states = [r["status"] for r in s.recipients()
                  if r["addr"].endswith("@remote.test")]
        print(f"seed {seed}: {len(mx.sessions)} sessions, "
              f"{states.count(1)} delivered, {states.count(2)} returned")
    # leaving the with block stopped sluiced and checked its stderr
