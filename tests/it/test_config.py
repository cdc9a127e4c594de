"""Configuration: `sluicectl config check` and sluiced refuse bad files with
"FILE:LINE: reason"; get-receiveconnector prints aligned Format-List
lines with the effective values (defaults included); SIGHUP applies a new
configuration to new connections only and refuses a broken one."""
import re
import signal
import socket
import subprocess

import pytest

from harness import (SLUICED, eventually, free_port, make_message, queue_id_of,
                     run_ctl)

GOOD = """\
[Transport]
QueueDirectory = {dir}/queue
LogDirectory = {dir}/log
ControlSocket = {dir}/ctl.sock

[AcceptedDomain localhost]
DomainType = Authoritative

[ReceiveConnector "Default Frontend"]
Bindings = 127.0.0.1:{port}
RemoteIPRanges = 0.0.0.0/0
AuthMechanism = None
PermissionGroups = AnonymousUsers
Fqdn = sluice.test
"""

SEND_CONNECTOR = """
[SendConnector Outbound]
AddressSpaces = *
DNSRoutingEnabled = true
"""

# name -> (text appended to GOOD, markers of the lines the error may name)
# A marker is a substring of a line; the error must name one of them.
BAD = {
    "unknown-key": ("BogusKey = 1\n", ["BogusKey"]),
    "bad-size": ("MaxMessageSize = 12XB\n", ["12XB"]),
    "bad-bool": ("RequireTLS = maybe\n", ["maybe"]),
    "bad-timespan": ("ConnectionTimeout = 5 minutes\n", ["5 minutes"]),
    "bad-range": ("MaxRecipientsPerMessage = -3\n", ["-3"]),
    "bad-iprange": ("RemoteIPRanges = 300.0.0.0/8\n",
                    ["300.0.0.0/8"]),
    "unknown-section": ("\n[Bogus Thing]\nKey = 1\n", ["[Bogus Thing]"]),
    "tlsauthlevel-without-requiretls": (
        SEND_CONNECTOR + "TlsAuthLevel = EncryptionOnly\n",
        ["[SendConnector Outbound]", "TlsAuthLevel"]),
    "tlsdomain-embedded-wildcard": (
        SEND_CONNECTOR + "RequireTLS = true\nTlsAuthLevel = DomainValidation"
        "\nTlsDomain = mail*.contoso.com\n",
        ["[SendConnector Outbound]", "TlsDomain"]),
    "requiretls-without-tls": (
        "RequireTLS = true\n",
        ['[ReceiveConnector "Default Frontend"]', "RequireTLS",
         "AuthMechanism"]),
    "duplicate-binding-and-ranges": (
        '\n[ReceiveConnector "Copy"]\nBindings = 127.0.0.1:{port}\n'
        "RemoteIPRanges = 0.0.0.0/0\nFqdn = copy.test\n",
        ['[ReceiveConnector "Copy"]', "Bindings = 127.0.0.1:{port}#2",
         "RemoteIPRanges = 0.0.0.0/0#2"]),
}


def write_conf(tmp_path, name, text, port):
    path = tmp_path / name
    path.write_text(text.format(dir=tmp_path, port=port))
    return path


def allowed_lines(text, markers, port):
    """1-based line numbers that the error may name."""
    lines = text.format(dir="D", port=port).splitlines()
    out = set()
    for mk in markers:
        mk = mk.format(port=port)
        nth = 1
        if "#" in mk:
            mk, nth = mk.rsplit("#", 1)
            nth = int(nth)
        hits = [i + 1 for i, ln in enumerate(lines) if mk in ln]
        assert len(hits) >= nth, (mk, lines)
        out.add(hits[nth - 1])
    return out


def error_lines(output, fname):
    return [int(m.group(1)) for m in
            re.finditer(rf"^{re.escape(fname)}:(\d+): \S", output, re.M)]


def test_good_config_passes(tmp_path):
    port = free_port()
    write_conf(tmp_path, "good.conf", GOOD + SEND_CONNECTOR, port)
    p = run_ctl("-c", "good.conf", "config", "check", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("case", sorted(BAD))
def test_config_check_rejects(tmp_path, case):
    extra, markers = BAD[case]
    port = free_port()
    text = GOOD + extra
    write_conf(tmp_path, "bad.conf", text, port)
    p = run_ctl("-c", "bad.conf", "config", "check", cwd=tmp_path)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    found = error_lines(out, "bad.conf")
    assert found, f"no 'bad.conf:LINE: reason' in {out!r}"
    want = allowed_lines(text, markers, port)
    assert set(found) & want, f"lines {found} named, expected one of {want}" \
        f":\n{out}"


@pytest.mark.parametrize("case", ["unknown-key", "duplicate-binding-and-ranges",
                                  "tlsauthlevel-without-requiretls"])
def test_sluiced_refuses_bad_config(tmp_path, case):
    extra, markers = BAD[case]
    port = free_port()
    text = GOOD + extra
    write_conf(tmp_path, "bad.conf", text, port)
    proc = subprocess.Popen([str(SLUICED), "-f", "-c", "bad.conf"],
                            cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    listened = []

    def exited():
        with socket.socket() as sk:
            sk.settimeout(0.2)
            if sk.connect_ex(("127.0.0.1", port)) == 0:
                listened.append(port)
        return proc.poll() is not None

    if not eventually(exited, 10, step=0.02):
        proc.kill()
        proc.wait()
        pytest.fail("sluiced kept running with a bad configuration")
    out, err = proc.communicate()
    assert proc.returncode == 1, out + err
    assert not listened, "sluiced listened with a bad configuration"
    found = error_lines(err, "bad.conf")
    assert set(found) & allowed_lines(text, markers, port), err
    with socket.socket() as sk:
        assert sk.connect_ex(("127.0.0.1", port)) != 0


# --- get-receiveconnector --------------------------------------------------------


def format_list(out):
    """Parse Format-List output into {name: value}; assert alignment."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines, "no output"
    cols = set()
    values = {}
    for ln in lines:
        m = re.match(r"^(\w+)( *): ?(.*)$", ln)
        assert m, f"not a 'Name : Value' line: {ln!r}"
        cols.add(len(m.group(1)) + len(m.group(2)))
        values[m.group(1)] = m.group(3).strip()
    assert len(cols) == 1, f"colons not aligned:\n{out}"
    return values


def test_get_receiveconnector(tmp_path):
    port = free_port()
    write_conf(tmp_path, "good.conf", GOOD, port)
    p = run_ctl("-c", "good.conf", "get-receiveconnector",
                "Default Frontend", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    v = format_list(p.stdout)
    assert v["Name"] == "Default Frontend"
    assert f"127.0.0.1:{port}" in v["Bindings"]
    assert "0.0.0.0/0" in v["RemoteIPRanges"]
    assert v["Fqdn"] == "sluice.test"
    # Keys the file does not set are shown with their defaults
    # (Exchange's defaults, as in SPEC.md's example).
    for key in ("Banner", "MaxMessageSize", "MaxHeaderSize", "MaxHopCount",
                "MaxProtocolErrors", "MaxRecipientsPerMessage",
                "MaxInboundConnection", "MaxInboundConnectionPerSource",
                "ConnectionTimeout", "ConnectionInactivityTimeout",
                "TarpitInterval", "RequireTLS", "ProtocolLoggingLevel",
                "AuthMechanism", "PermissionGroups"):
        assert key in v, f"{key} missing from:\n{p.stdout}"
    assert v["MaxRecipientsPerMessage"] == "200"
    assert v["MaxInboundConnectionPerSource"] == "20"
    assert v["ConnectionTimeout"] == "00:10:00"
    assert v["ConnectionInactivityTimeout"] == "00:05:00"
    assert v["TarpitInterval"] == "00:00:05"
    assert v["RequireTLS"].lower() in ("false", "$false")


def test_get_receiveconnector_unknown_name(tmp_path):
    port = free_port()
    write_conf(tmp_path, "good.conf", GOOD, port)
    p = run_ctl("-c", "good.conf", "get-receiveconnector", "Nope",
                cwd=tmp_path)
    assert p.returncode != 0
    assert "Nope" in p.stdout + p.stderr


def test_get_receiveconnector_all(tmp_path):
    port = free_port()
    text = GOOD + ('\n[ReceiveConnector "Second One"]\n'
                   "Bindings = 127.0.0.1:{port}\n"
                   "RemoteIPRanges = 127.0.0.2\nFqdn = second.test\n")
    write_conf(tmp_path, "good.conf", text, port)
    p = run_ctl("-c", "good.conf", "get-receiveconnector", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    names = re.findall(r"^Name +: (.*)$", p.stdout, re.M)
    assert names == ["Default Frontend", "Second One"], p.stdout


# --- SIGHUP -------------------------------------------------------------------------


def banner_of(s):
    with s.client() as c:
        c.quit()
        return c.greeting.text


def wait_banner(s, want, timeout=5.0):
    """The banner once it is `want` (a reload is applied in its own time),
    else the one it still is."""
    return eventually(lambda: banner_of(s) == want and want,
                      timeout) or banner_of(s)


def test_sighup_new_banner_open_session_continues(sluice_factory):
    s = sluice_factory(conn={"Banner": '"220 first.test first banner"'})
    assert banner_of(s) == "220 first.test first banner"
    old = s.client()
    try:
        old.ehlo()
        old.cmd("MAIL FROM:<a@sender.example>").check(250, "2.1.0")
        s.configure(conn={"Banner": '"220 second.test second banner"'})
        s.reload()
        assert wait_banner(s, "220 second.test second banner") == \
            "220 second.test second banner"
        # The open session finishes its transaction undisturbed.
        old.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        old.cmd("DATA").check(354)
        old.send(make_message("across-reload") + ".\r\n")
        r = old.reply().check(250, "2.6.0")
        old.quit()
    finally:
        old.close()
    assert s.message(queue_id_of(r))
    assert s.alive()


def test_sighup_broken_config_keeps_old(sluice_factory):
    s = sluice_factory(conn={"Banner": '"220 first.test first banner"'})
    good = s.conf_text
    lines = good.splitlines()
    s.write_config(good + "BogusKey = 1\n")
    bad_line = len(lines) + 1
    s.reload()
    m = s.wait_stderr(rf"sluice\.conf:{bad_line}: ", timeout=5)
    assert m, f"no reason with file:line on stderr:\n{s.stderr()}"
    assert s.alive()
    assert banner_of(s) == "220 first.test first banner"
    with s.client() as c:
        c.send_message("a@sender.example", ["user@localhost"],
                       make_message("after-bad-reload")).check(250, "2.6.0")
        c.quit()
    # Fixed again: the next reload is applied.
    s.configure(conn={"Banner": '"220 third.test third banner"'})
    s.reload()
    assert wait_banner(s, "220 third.test third banner") == \
        "220 third.test third banner"


def test_sighup_many_times_is_stable(sluice_factory):
    s = sluice_factory()
    for i in range(5):
        s.configure(conn={"Banner": f'"220 round{i}.test round {i}"'})
        s.signal(signal.SIGHUP)
        assert wait_banner(s, f"220 round{i}.test round {i}") == \
            f"220 round{i}.test round {i}"
