"""`sluicectl config check` an Exchange administrator can trust (issue 11):
what cannot work is refused with FILE:LINE: reason (the line of the key
concerned), what Exchange would accept but probably surprises is a
"FILE:LINE: warning:" line with exit 0, and the messages say what to edit:
an indented key, a misspelt key, a PowerShell-quoted list.  sluiced applies
the same checks at start and on reload.  Receive connectors take Enabled."""
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import SLUICED, Client, eventually, free_port, run_ctl
from test_config import GOOD, SEND_CONNECTOR, allowed_lines, error_lines


def check(tmp_path, text, name="c.conf", **fmt):
    """Write text (formatted with dir, port and fmt) and run config check;
    returns (exit code, stdout + stderr, the text as written)."""
    fmt.setdefault("dir", tmp_path)
    fmt.setdefault("port", free_port())
    body = text.format(**fmt)
    (tmp_path / name).write_text(body)
    p = run_ctl("-c", tmp_path / name, "config", "check")
    return p.returncode, p.stdout + p.stderr, body


def line_of(body, marker, nth=1):
    hits = [i + 1 for i, ln in enumerate(body.splitlines()) if marker in ln]
    assert len(hits) >= nth, (marker, body)
    return hits[nth - 1]


def refused_at(tmp_path, text, marker, words, **fmt):
    """config check exits 1 naming the line of marker, with words."""
    rc, out, body = check(tmp_path, text, **fmt)
    assert rc == 1, out
    want = f"c.conf:{line_of(body, marker)}: "
    msgs = [ln for ln in out.splitlines() if want in ln]
    assert msgs, f"nothing at {want!r}:\n{out}"
    assert any(w in ln for ln in msgs for w in
               ([words] if isinstance(words, str) else words)), out
    return out


def warned_at(tmp_path, text, marker, words, **fmt):
    """config check exits 0 with 'FILE:LINE: warning: ...words...'."""
    rc, out, body = check(tmp_path, text, **fmt)
    assert rc == 0, out
    want = f"c.conf:{line_of(body, marker)}: warning: "
    msgs = [ln for ln in out.splitlines() if want in ln]
    assert msgs and any(words in ln for ln in msgs), \
        f"no {want!r} ... {words!r} in:\n{out}"
    assert "configuration OK" in out
    return out


def shared_dir():
    """A directory every user may enter (pytest's own is root's alone),
    so that files in it are readable or not by their own mode."""
    d = Path(tempfile.mkdtemp(prefix="sluice-check-"))
    os.chmod(d, 0o755)
    return d


# --- refused -----------------------------------------------------------------


def test_tlsdomain_without_domainvalidation_refused(tmp_path):
    out = refused_at(
        tmp_path, GOOD + SEND_CONNECTOR + "RequireTLS = true\n"
        "TlsAuthLevel = CertificateValidation\nTlsDomain = *.contoso.com\n",
        "TlsDomain", "TlsDomain is used only with TlsAuthLevel = "
        "DomainValidation (TlsAuthLevel is CertificateValidation)")
    assert "CertificateValidation" in out


def test_tlsdomain_without_level_refused(tmp_path):
    refused_at(tmp_path, GOOD + SEND_CONNECTOR + "TlsDomain = contoso.com\n",
               "TlsDomain", "TlsAuthLevel is not set")


def test_users_file_missing_refused(tmp_path):
    refused_at(tmp_path, GOOD.replace(
        "[Transport]\n", "[Transport]\nUsersFile = {dir}/nope.users\n"),
        "UsersFile", "nope.users: No such file or directory")


def test_credential_missing_refused(tmp_path):
    refused_at(tmp_path, GOOD + """
[SendConnector Relay]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = 10.10.10.1
SmartHostAuthMechanism = BasicAuth
AuthenticationCredential = {dir}/relay.secret
""", "AuthenticationCredential", "relay.secret: No such file or directory")


def test_credential_without_user_password_refused(tmp_path):
    (tmp_path / "relay.secret").write_text("just-a-password\n")
    os.chmod(tmp_path / "relay.secret", 0o600)
    refused_at(tmp_path, GOOD + """
[SendConnector Relay]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = 10.10.10.1
SmartHostAuthMechanism = BasicAuth
AuthenticationCredential = {dir}/relay.secret
""", "AuthenticationCredential", "first line must be user:password")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_files_opened_as_the_run_time_user(tmp_path):
    """sluicectl runs as root, sluiced as User: a users file only root can
    read passes a check made as root and fails every AUTH later."""
    d = shared_dir()
    try:
        users = d / "users"
        users.write_text("alice:$6$salt$hash\n")
        os.chmod(users, 0o600)  # root's
        cred = d / "relay.secret"
        cred.write_text("relayuser:pw\n")
        os.chmod(cred, 0o640)
        nobody = pwd.getpwnam("nobody")
        text = GOOD.replace("[Transport]\n", "[Transport]\nUser = nobody\n"
                            f"UsersFile = {users}\n") + f"""
[SendConnector Relay]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = 10.10.10.1
SmartHostAuthMechanism = BasicAuth
AuthenticationCredential = {cred}
"""
        out = refused_at(tmp_path, text, "UsersFile",
                         "Permission denied (as user nobody)")
        assert re.search(r"c\.conf:\d+: AuthenticationCredential .*"
                         r"Permission denied \(as user nobody\)", out), out
        # Given to the user's group, both pass.
        os.chown(users, 0, nobody.pw_gid)
        os.chmod(users, 0o640)
        os.chown(cred, 0, nobody.pw_gid)
        rc, out, _ = check(tmp_path, text)
        assert rc == 0, out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_unknown_user_refused(tmp_path):
    refused_at(tmp_path, GOOD.replace(
        "[Transport]\n", "[Transport]\nUser = no-such-sluice-user\n"),
        "User = ", "no-such-sluice-user")


def test_requiretls_without_certificate_refused(tmp_path):
    refused_at(tmp_path, GOOD + """
[ReceiveConnector Secure]
Bindings = 127.0.0.2:{port}
AuthMechanism = Tls
RequireTLS = true
""", "RequireTLS = true", "RequireTLS = true needs a certificate")


@pytest.mark.parametrize("where", ["receive", "send"])
def test_fqdn_not_a_hostname_refused(tmp_path, where):
    if where == "receive":
        text = GOOD.replace("Fqdn = sluice.test", "Fqdn = not a hostname!")
    else:
        text = GOOD + SEND_CONNECTOR + "Fqdn = not a hostname!\n"
    refused_at(tmp_path, text, "not a hostname!", "not a host name")


def test_missing_certificate_and_ca_named_with_key_and_line(tmp_path, pki):
    text = GOOD.replace("[Transport]\n",
                        "[Transport]\nTrustedCAFile = {dir}/no-ca.pem\n") + f"""
[Certificate mx]
CertificateFile = {{dir}}/no-cert.pem
KeyFile = {pki}/server.key
"""
    out = refused_at(tmp_path, text, "CertificateFile",
                     "CertificateFile ")
    assert re.search(r"c\.conf:\d+: CertificateFile \S+/no-cert\.pem: "
                     r"No such file or directory", out), out
    assert re.search(r"c\.conf:2: TrustedCAFile \S+/no-ca\.pem: No such "
                     r"file or directory", out), out


def test_world_readable_private_key_refused(tmp_path, pki):
    d = shared_dir()
    try:
        key = d / "mx.key"
        shutil.copy(f"{pki}/server.key", key)
        os.chmod(key, 0o644)
        text = GOOD + f"""
[Certificate mx]
CertificateFile = {pki}/server.pem
KeyFile = {key}
"""
        refused_at(tmp_path, text, "KeyFile",
                   "can be read by every local user (mode 0644)")
        # The same file in a directory others cannot enter is private.
        os.chmod(d, 0o700)
        rc, out, _ = check(tmp_path, text)
        assert rc == 0, out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_world_readable_credential_refused(tmp_path):
    d = shared_dir()
    try:
        cred = d / "relay.secret"
        cred.write_text("relayuser:pw\n")
        os.chmod(cred, 0o644)
        refused_at(tmp_path, GOOD + f"""
[SendConnector Relay]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = 10.10.10.1
SmartHostAuthMechanism = BasicAuth
AuthenticationCredential = {cred}
""", "AuthenticationCredential", "can be read by every local user")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_world_writable_queue_directory_refused(tmp_path):
    q = tmp_path / "queue"
    q.mkdir()
    os.chmod(q, 0o1777)
    refused_at(tmp_path, GOOD, "QueueDirectory",
               "every local user may write to it (mode 1777)")


# --- warned ------------------------------------------------------------------


def test_shadowed_receive_connector_warned(tmp_path):
    """Issue 11's case: 0.0.0.0/0 beside 0.0.0.0/0, ::/0 on one binding;
    the second never gets an IPv4 client."""
    warned_at(tmp_path, GOOD + """
[ReceiveConnector Second]
Bindings = 127.0.0.1:{port}
RemoteIPRanges = 0.0.0.0/0, ::/0
Fqdn = second.test
""", "RemoteIPRanges = 0.0.0.0/0, ::/0",
        'receive connector "Second" is shadowed by "Default Frontend"')


def test_narrower_range_is_no_warning(tmp_path):
    """The usual Exchange layout: a relay connector for a few addresses
    beside the default one is what overlapping ranges are for."""
    rc, out, _ = check(tmp_path, GOOD + """
[ReceiveConnector Relay]
Bindings = 127.0.0.1:{port}
RemoteIPRanges = 10.0.0.0/8, 127.0.0.2
Fqdn = relay.test
""")
    assert rc == 0 and "warning" not in out, out


def test_fqdn_not_in_certificate_warned(tmp_path, pki):
    text = GOOD.replace("AuthMechanism = None\n",
                        "AuthMechanism = Tls\nTlsCertificateName = mx\n") + \
        f"""
[Certificate mx]
CertificateFile = {pki}/server.pem
KeyFile = {pki}/server.key
"""
    warned_at(tmp_path, text, "Fqdn = sluice.test",
              "Fqdn sluice.test of receive connector \"Default Frontend\" "
              "is not a name of its certificate mx")
    rc, out, _ = check(tmp_path, text.replace("Fqdn = sluice.test",
                                              "Fqdn = mx.sluice.test"))
    assert rc == 0 and "warning" not in out, out


def test_open_queue_and_log_directories_warned(tmp_path):
    for d in ("queue", "log"):
        (tmp_path / d).mkdir()
        os.chmod(tmp_path / d, 0o755)
    text = GOOD.replace("LogDirectory", "LogDirectory")
    out = warned_at(tmp_path, text, "QueueDirectory",
                    "QueueDirectory {} is open to every local user (mode "
                    "0755)".format(tmp_path / "queue"))
    assert re.search(rf"c\.conf:{line_of(text, 'LogDirectory')}: warning: "
                     r"LogDirectory \S+ is open to every local user", out), \
        out


def test_world_readable_users_file_warned(tmp_path):
    d = shared_dir()
    try:
        users = d / "users"
        users.write_text("alice:$6$salt$hash\n")
        os.chmod(users, 0o644)
        warned_at(tmp_path, GOOD.replace(
            "[Transport]\n", f"[Transport]\nUsersFile = {users}\n"),
            "UsersFile", "password hashes")
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- messages that say what to edit --------------------------------------------


def test_indented_key_after_smarthosts(tmp_path):
    out = refused_at(tmp_path, GOOD + """
[SendConnector Relay]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = relay.example,
    RequireTLS = true
""", "    RequireTLS", '"RequireTLS = ..." is indented, so it continues '
        "SmartHosts")
    assert "bad smart host" not in out and "not a host name" not in out, out


def test_indented_key_after_scalar(tmp_path):
    out = refused_at(tmp_path, GOOD.replace(
        "Fqdn = sluice.test", "Fqdn = sluice.test\n  RequireTLS = false"),
        "  RequireTLS", "is indented, so it continues Fqdn")
    assert "only lists" not in out, out


def test_powershell_quoted_list_accepted(tmp_path):
    rc, out, _ = check(tmp_path, GOOD.replace(
        "RemoteIPRanges = 0.0.0.0/0",
        'RemoteIPRanges = "127.0.0.0/8","10.0.0.0/8"'))
    assert rc == 0, out
    p = run_ctl("-c", tmp_path / "c.conf", "get-receiveconnector")
    assert re.search(r"^RemoteIPRanges +: 127\.0\.0\.0/8, 10\.0\.0\.0/8$",
                     p.stdout, re.M), p.stdout


def test_bad_item_of_a_list_quoted_alone(tmp_path):
    out = refused_at(tmp_path, GOOD.replace(
        "RemoteIPRanges = 0.0.0.0/0",
        'RemoteIPRanges = "127.0.0.0/8","10.0.0.0/88"'),
        "RemoteIPRanges", 'bad CIDR prefix length: "10.0.0.0/88"')
    assert "127.0.0.0/8" not in out.split("RemoteIPRanges:")[1], out


def test_unbalanced_quote_quoted(tmp_path):
    refused_at(tmp_path, GOOD.replace(
        "RemoteIPRanges = 0.0.0.0/0",
        'RemoteIPRanges = "127.0.0.0/8,"10.0.0.0/8"'),
        "RemoteIPRanges", "unbalanced double quote")


@pytest.mark.parametrize("line,words", [
    ("RequireTSL = true", "unknown key RequireTSL in [ReceiveConnector] "
                          "(did you mean RequireTLS?)"),
    ("MaxMesageSize = 10MB", "(did you mean MaxMessageSize?)"),
    ("TlsDomain = contoso.com", "(TlsDomain is a key of [SendConnector])"),
])
def test_unknown_key_suggestions(tmp_path, line, words):
    out = refused_at(tmp_path, GOOD + line + "\n", line, words)
    assert out.count("did you mean") <= 1


def test_unknown_key_far_from_any_gets_no_guess(tmp_path):
    out = refused_at(tmp_path, GOOD + "Frobnicate = 1\n", "Frobnicate",
                     "unknown key Frobnicate in [ReceiveConnector]")
    assert "did you mean" not in out, out


def test_misspelt_section(tmp_path):
    refused_at(tmp_path, GOOD + "\n[RecieveConnector X]\nBindings = "
               "127.0.0.1:{port}\n", "[RecieveConnector X]",
               "did you mean [ReceiveConnector]?")


# --- sluiced applies the same checks -------------------------------------------


def start_refused(tmp_path, text):
    """sluiced -f exits 1 without listening; returns its stderr."""
    p = subprocess.run([str(SLUICED), "-f", "-c", str(text)],
                       capture_output=True, text=True, timeout=30,
                       cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    return p.stderr


def test_sluiced_refuses_world_readable_key(tmp_path, pki):
    d = shared_dir()
    try:
        key = d / "mx.key"
        shutil.copy(f"{pki}/server.key", key)
        os.chmod(key, 0o604)
        port = free_port()
        conf = tmp_path / "c.conf"
        conf.write_text(GOOD.format(dir=tmp_path, port=port) + f"""
[Certificate mx]
CertificateFile = {pki}/server.pem
KeyFile = {key}
""")
        err = start_refused(tmp_path, conf)
        assert re.search(r"c\.conf:\d+: KeyFile \S+ can be read by every "
                         r"local user \(mode 0604\)", err), err
        with socket.socket() as sk:
            assert sk.connect_ex(("127.0.0.1", port)) != 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sluiced_refuses_missing_users_file(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(GOOD.format(dir=tmp_path, port=free_port()).replace(
        "[Transport]\n", f"[Transport]\nUsersFile = {tmp_path}/nope\n"))
    err = start_refused(tmp_path, conf)
    assert re.search(r"c\.conf:2: UsersFile \S+/nope: No such file", err), err


def test_reload_refuses_what_check_refuses(sluice_factory, tmp_path):
    s = sluice_factory()
    good = s.conf_text
    s.write_config(good.replace("[Transport]\n",
                                f"[Transport]\nUsersFile = {tmp_path}/nope\n"))
    s.reload()
    assert s.wait_stderr(r"sluice\.conf:2: UsersFile \S+/nope: No such file"
                         r".*\n.*reload refused", timeout=5), s.stderr()
    assert s.alive()


def test_sluiced_logs_warnings_at_start(sluice_factory):
    s = sluice_factory(connectors=[{"name": "Second",
                                    "RemoteIPRanges": ["0.0.0.0/0"]}])
    assert s.wait_stderr(r"warning: receive connector \"Second\" is "
                         r"shadowed by \"Default\"", timeout=5), s.stderr()


# --- Enabled on receive connectors -----------------------------------------------


def connect_refused(port):
    with socket.socket() as sk:
        sk.settimeout(2)
        return sk.connect_ex(("127.0.0.1", port)) != 0


def test_disabled_receive_connector_does_not_listen(sluice_factory):
    port2 = free_port()
    off = {"name": "Partner", "Bindings": [f"127.0.0.1:{port2}"],
           "Banner": '"220 partner.test partner connector"',
           "Enabled": "false"}
    s = sluice_factory(connectors=[off])
    assert connect_refused(port2)
    p = run_ctl("-c", s.conf_path, "get-receiveconnector", "Partner")
    assert re.search(r"^Enabled +: false$", p.stdout, re.M), p.stdout
    # Enabled again by a reload: it listens and serves.
    on = dict(off, Enabled="true")
    s.configure(connectors=[on])
    s.reload()
    eventually(lambda: not connect_refused(port2), 5)
    with Client(port2) as c:
        assert c.greeting.text == "220 partner.test partner connector"
        c.quit()


def test_disabled_receive_connector_serves_nobody(sluice_factory):
    """A disabled connector with a narrower range on the same binding
    would win every local client; disabled, the default one serves."""
    s = sluice_factory(connectors=[{
        "name": "Local", "RemoteIPRanges": ["127.0.0.0/8"],
        "Banner": '"220 local.test local connector"', "Enabled": "false"}])
    with Client(s.port) as c:
        assert c.greeting.text != "220 local.test local connector"
        c.quit()
    p = run_ctl("-c", s.conf_path, "config", "check")
    assert p.returncode == 0 and "warning" not in p.stderr, p.stderr
