"""Relay control and receive connector selection.

Anonymous clients reach accepted domains only (550 5.7.54 otherwise); an
ExternalAuthoritative connector with ExchangeServers relays anything; the
connector serving a connection is the one whose RemoteIPRanges match the
client most specifically (Exchange's rule), told apart by their banners.
"""

import pytest

from harness import (eventually, make_message, queue_id_of, running,
                     sluice_fixture)

SENDER = "a@sender.example"


anon = sluice_fixture("anon")


@pytest.mark.parametrize("rcpt,code,enh", [
    ("user@localhost", 250, "2.1.5"),
    ("user@example.test", 250, "2.1.5"),
    ("User@EXAMPLE.Test", 250, "2.1.5"),
    ("Postmaster", 250, "2.1.5"),
    ("user@elsewhere.example", 550, "5.7.54"),
    ("user@sub.example.test", 550, "5.7.54"),
    ("user@example.test.evil.example", 550, "5.7.54"),
    ("user@localhost.evil.example", 550, "5.7.54"),
], ids=lambda v: str(v))
def test_anonymous_relay_rules(anon, rcpt, code, enh):
    with anon.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        r = c.cmd(f"RCPT TO:<{rcpt}>").check(code, enh)
        if code == 550:
            assert "Unable to relay" in r.text, r
        c.quit()


def test_denied_recipient_is_not_stored(anon):
    with anon.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<victim@elsewhere.example>").check(550, "5.7.54")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("partly-denied") + ".\r\n")
        r = c.reply().check(250, "2.6.0")
    m = anon.message(queue_id_of(r))
    assert [x["addr"] for x in m["rcpts"]] == ["user@localhost"]


def test_only_denied_recipients_gives_no_data(anon):
    before = len(anon.messages())
    with anon.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<victim@elsewhere.example>").check(550, "5.7.54")
        r = c.cmd("DATA")
        assert r.code in (503, 554) and r.enhanced == "5.5.1", r
    assert len(anon.messages()) == before


def test_external_authoritative_relays_anything(sluice_factory):
    s = sluice_factory(conn={"AuthMechanism": "ExternalAuthoritative",
                             "PermissionGroups": "ExchangeServers"})
    with s.client() as c:
        r = c.send_message(SENDER, ["someone@elsewhere.example",
                                    "user@localhost"],
                           make_message("relayed"))
        r.check(250, "2.6.0")
    m = s.message(queue_id_of(r))
    assert sorted(x["addr"] for x in m["rcpts"]) == \
        ["someone@elsewhere.example", "user@localhost"]
    # Exchange treats an ExternalAuthoritative (ExchangeServers) connector
    # as internal: the message is marked so, without a mechanism.
    head = m["body"].split(b"\r\n\r\n", 1)[0]
    assert b"\r\nX-Sluice-Organization-AuthAs: Internal\r\n" in head
    assert b"\r\nX-Sluice-Organization-AuthMechanism: None\r\n" in head


# --- connector selection ---------------------------------------------------


SELECTION_CONNECTORS = [
    {"name": "Specific", "RemoteIPRanges": "127.0.0.2",
     "Banner": '"220 specific.test specific connector"'},
    {"name": "Subnet", "RemoteIPRanges": "127.0.1.0/24",
     "Banner": '"220 subnet.test subnet connector"'},
    {"name": "Range", "RemoteIPRanges": "127.0.0.10-127.0.0.12",
     "Banner": '"220 range.test range connector"'},
    {"name": "Relay", "RemoteIPRanges": "127.0.0.5",
     "AuthMechanism": "ExternalAuthoritative",
     "PermissionGroups": "ExchangeServers",
     "Banner": '"220 relay.test relay connector"'},
]


selection = sluice_fixture(
    "selection", connectors=SELECTION_CONNECTORS,
    conn={"RemoteIPRanges": "0.0.0.0/0",
          "Banner": '"220 general.test general connector"'})


@pytest.mark.parametrize("source,banner", [
    ("127.0.0.1", "general"),
    ("127.0.0.2", "specific"),
    ("127.0.0.3", "general"),
    ("127.0.1.9", "subnet"),
    ("127.0.0.10", "range"),
    ("127.0.0.12", "range"),
    ("127.0.0.13", "general"),
    ("127.0.0.5", "relay"),
])
def test_most_specific_connector_wins(selection, source, banner):
    with selection.client(source=source) as c:
        assert c.greeting.code == 220
        assert c.greeting.text == \
            f"220 {banner}.test {banner} connector", c.greeting
        c.quit()


@pytest.mark.parametrize("source,code", [
    ("127.0.0.5", 250),   # the ExternalAuthoritative connector
    ("127.0.0.1", 550),   # the anonymous general one
    ("127.0.0.2", 550),
])
def test_relay_permission_follows_selected_connector(selection, source,
                                                     code):
    with selection.client(source=source) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        r = c.cmd("RCPT TO:<someone@elsewhere.example>")
        r.check(code, "2.1.5" if code == 250 else "5.7.54")
        c.quit()


def test_protocol_log_names_selected_connector(selection):
    with selection.client(source="127.0.0.2") as c:
        port = c.local_port
        c.ehlo()
        c.quit()

    def session_rows():
        _, rows = selection.protolog()
        return [r for r in rows if len(r) >= 6 and
                r[5] == f"127.0.0.2:{port}"]

    eventually(lambda: any(r[6] == "-" for r in session_rows()
                           if len(r) > 6), 5)
    rows = session_rows()
    assert rows, "no protocol log rows for the session"
    assert all(r[1].endswith("Specific") for r in rows), rows


RELAY_ONLY = "\n[AcceptedDomain relay.test]\nDomainType = InternalRelay\n"


def test_bare_postmaster_refused_without_authoritative_domain(tmp_path):
    """A relay-only server (no Authoritative domain) has no mailbox for
    <Postmaster>: it is refused at RCPT with 550 5.1.1 and a reason,
    instead of accepted and kept forever (issue 18.3)."""
    with running(tmp_path, domains=(), raw_extra=RELAY_ONLY) as s:
        with s.client() as c:
            c.ehlo()
            c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
            r = c.cmd("RCPT TO:<Postmaster>").check(550, "5.1.1")
            assert "Authoritative" in r.text, r
            c.cmd("RCPT TO:<postmaster@relay.test>").check(250, "2.1.5")
            c.quit()
        assert s.messages() == []


def test_bare_postmaster_settles_when_its_domain_goes(sluice_factory):
    """<Postmaster> stored while an Authoritative domain existed (the
    daemon stops before delivering it), then a configuration without one:
    the recipient settles like any unroutable one: it waits in the
    Unreachable queue, deferred with the reason, and expires (here after
    MessageExpirationTimeout's minimum, 5 s) instead of waiting forever."""
    s = sluice_factory(start=False)
    s.start(env={"SLUICE_CRASH_POINT": "before-reply"})
    with s.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<Postmaster>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("postmaster-stranded") + ".\r\n")
        assert c.closed(10)
    assert s.wait_exit(10) == 97, s.stderr()
    s.configure(domains=(), raw_extra=RELAY_ONLY,
                transport={"TransientFailureRetryInterval": "1s",
                           "MessageExpirationTimeout": "5s"})
    s.start()

    def states():
        return {r["addr"]: r["status"] for r in s.recipients()}

    eventually(lambda: states().get("Postmaster") == 2, 30)
    st = states()
    assert st.get("Postmaster") == 2, st
