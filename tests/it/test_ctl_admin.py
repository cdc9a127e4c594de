"""sluicectl for the daemon as a whole, over the control socket: status,
reload (what changed, or why it was refused), logs reopen; and the help
generated from the command table (help, help COMMAND, COMMAND --help,
groups such as `config`)."""
import os
import re
import subprocess
import time
from pathlib import Path

from harness import (SLUICECTL, VERSION, Client, eventually, make_message,
                     queue_id_of, running)


RELAY = """
[AcceptedDomain relay.test]
DomainType = InternalRelay

[SendConnector Relay]
AddressSpaces = relay.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9
"""


def ctl(*args, conf=None):
    cmd = [str(SLUICECTL)]
    if conf is not None:
        cmd += ["-c", str(conf)]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True,
                          text=True, timeout=30)


def fields(text):
    """Format-List lines "Name : value" as a dict."""
    out = {}
    for ln in text.splitlines():
        if " : " in ln:
            k, v = ln.split(" : ", 1)
            out[k.strip()] = v.strip()
    return out


def send(port, rcpts):
    with Client(port) as c:
        r = c.send_message("s@sender.example", rcpts, make_message("x"))
        r.check(250)
        c.quit()
    return queue_id_of(r)


def commands():
    """The command names of the table, as `help --man` prints them."""
    p = ctl("help", "--man")
    assert p.returncode == 0
    return [n.replace("\\-", "-") for n in
            re.findall(r"^\.TP\n\\fB(.+?)\\fR", p.stdout, re.M)]


def test_help_and_version_options():
    for args in (["--help"], ["-h"], ["help"]):
        p = ctl(*args)
        assert p.returncode == 0, (args, p.stderr)
        assert "usage: sluicectl" in p.stdout
        for name in ("status", "reload", "logs reopen", "config check",
                     "queue", "route"):
            assert f"  {name}" in p.stdout
    p = ctl()
    assert p.returncode == 2 and "usage: sluicectl" in p.stderr
    p = ctl("--bogus")
    assert p.returncode == 2 and "usage: sluicectl" in p.stderr
    p = ctl("frobnicate")
    assert p.returncode == 2 and "unknown command" in p.stderr


def test_every_command_has_its_own_help_with_examples():
    names = commands()
    assert len(names) >= 18
    for name in names:
        p = ctl("help", *name.split())
        assert p.returncode == 0, (name, p.stderr)
        assert p.stdout.startswith(f"usage: sluicectl [-c FILE] {name}")
        assert "\nexamples:\n  sluicectl" in p.stdout, name
        others = [n for n in names if n != name and
                  re.search(rf"sluicectl \[-c FILE\] {re.escape(n)}\b(?!-)",
                            p.stdout)]
        assert not others, f"help {name} shows {others}"
        q = ctl(*name.split(), "--help")
        assert q.returncode == 0 and q.stdout == p.stdout, name


def test_groups_list_their_subcommands():
    p = ctl("config")
    assert p.returncode == 2
    for sub in ("config check", "config dump", "config keys"):
        assert sub in p.stderr
    assert "queue" not in p.stderr
    for args in (["config", "--help"], ["help", "config"]):
        p = ctl(*args)
        assert p.returncode == 0 and "config check" in p.stdout
    p = ctl("logs")
    assert p.returncode == 2 and "logs reopen" in p.stderr
    p = ctl("config", "frob")
    assert p.returncode == 2 and 'no command "config frob"' in p.stderr


def test_config_keys_prints_the_key_table():
    p = ctl("config", "keys")
    assert p.returncode == 0
    rows = [ln.split("\t") for ln in p.stdout.splitlines()]
    assert all(len(r) == 6 for r in rows)
    byname = {(r[0], r[1]): r for r in rows}
    assert byname[("Transport", "MaxReceiveSize")][2:4] == ["size", "36MB"]
    assert byname[("ReceiveConnector", "Bindings")][3] == "(required)"
    assert byname[("ReceiveConnector", "Fqdn")][3] == "(derived)"


def test_status(tmp_path):
    with running(tmp_path, raw_extra=RELAY,
                 transport={"Resolver": "127.0.0.1@9"}) as s:
        send(s.port, ["a@relay.test", "b@relay.test"])
        send(s.port, ["c@relay.test"])
        with Client(s.port) as idle:
            idle.ehlo()
            p = ctl("status", conf=s.conf_path)
            assert p.returncode == 0, p.stderr
        f = fields(p.stdout)
        assert f["Version"] == VERSION
        assert f["ConfigurationFile"] == str(s.conf_path.resolve())
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                        f["ConfigurationLoaded"])
        assert f["ProcessId"] == str(s.pid)
        assert f["InboundSessions"] == "1"
        assert f["QueuedMessages"] == "2"
        assert f["QueuedRecipients"] == "3"
        assert int(f["ReadyRecipients"]) + int(f["RetryRecipients"]) == 3
        loaded = f["ConfigurationLoaded"]
        time.sleep(1.1)  # a reload one second later shows a later time
        assert ctl("reload", conf=s.conf_path).returncode == 0
        f2 = fields(ctl("status", conf=s.conf_path).stdout)
        assert f2["ConfigurationLoaded"] > loaded
        assert f2["Started"] == f["Started"]
    p = ctl("status", conf=s.conf_path)
    assert p.returncode == 1 and "is sluiced running?" in p.stderr


def test_reload_reports_what_changed(tmp_path):
    with running(tmp_path) as s:
        p = ctl("reload", conf=s.conf_path)
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines() == [
            f"reloaded {s.conf_path.resolve()}", "no changes"]

        base = s.conf_text
        s.write_config(base.replace("Fqdn = sluice.test",
                                    "Fqdn = sluice.test\nBanner = hi there")
                       .replace("MaxMessageSize = 10MB",
                                "MaxMessageSize = 20MB") + RELAY +
                       '\n[ReceiveConnector "Second one"]\n'
                       f"Bindings = 127.0.0.2:{s.port}\n")
        p = ctl("reload", conf=s.conf_path)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()[1:]
        assert sorted(lines) == sorted([
            "[AcceptedDomain relay.test]: added",
            '[ReceiveConnector "Second one"]: added',
            "[ReceiveConnector Default]: changed: Banner, MaxMessageSize",
            "[SendConnector Relay]: added",
        ])
        with Client(s.port) as c:
            assert c.greeting.text == "220 hi there"

        s.write_config(base)
        p = ctl("reload", conf=s.conf_path)
        assert sorted(p.stdout.splitlines()[1:]) == sorted([
            "[ReceiveConnector Default]: changed: Banner, MaxMessageSize",
            "[AcceptedDomain relay.test]: removed",
            '[ReceiveConnector "Second one"]: removed',
            "[SendConnector Relay]: removed",
        ])

        # a broken file: its errors, exit 1, the running one stays
        s.write_config(base.replace("MaxMessageSize = 10MB",
                                    "MaxMessageSize = huge"))
        p = ctl("reload", conf=s.conf_path)
        assert p.returncode == 1
        assert re.search(rf"^error: {re.escape(str(s.conf_path))}:\d+: "
                         r"MaxMessageSize: ", p.stdout, re.M), p.stdout
        assert "error: reload refused" in p.stdout
        with Client(s.port) as c:
            assert c.greeting.text == "220 sluice.test Sluice ESMTP ready"
            c.ehlo().check(250)
            assert "SIZE 10485760" in c.ehlo().text
        s.write_config(base)


def test_logs_reopen(tmp_path):
    with running(tmp_path) as s:
        first = send(s.port, ["u@localhost"])
        files = s.tracklog_files()
        eventually(lambda: f"DELIVER,{first}" in Path(files[0]).read_text(),
                   10, "the DELIVER row")
        os.rename(files[0], files[0] + ".old")
        p = ctl("logs", "reopen", conf=s.conf_path)
        assert p.returncode == 0 and p.stdout == "log files reopened\n"
        second = send(s.port, ["u@localhost"])
        assert f"RECEIVE,{second}" in Path(files[0]).read_text()
        assert first not in Path(files[0]).read_text()
        assert "reloading" not in s.stderr()
