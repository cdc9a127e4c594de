"""sluiced as a service (docs/operations.md, "Running as a service"):
--version; detached with a PID file, ready when the starting command
returns; under systemd (NOTIFY_SOCKET) in the foreground, logging to the
journal and telling systemd READY/RELOADING/STOPPING; SIGUSR1 reopens the
log files and nothing else."""
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

from harness import (SLUICECTL, SLUICED, VERSION, Client, Sluice, eventually,
                     make_message, queue_id_of)



def clean_env(**extra):
    e = {k: v for k, v in os.environ.items()
         if k not in ("NOTIFY_SOCKET", "INVOCATION_ID")}
    e.update(extra)
    return e


def wait_gone(pid, timeout=15):
    def gone():
        if not Path(f"/proc/{pid}").exists():
            return True
        # a zombie of a process we did not start is reaped by init
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except OSError:
            return True

    return eventually(gone, timeout)


def send_one(port, subject):
    with Client(port) as c:
        r = c.send_message("a@sender.example", ["u@localhost"],
                           make_message(subject))
        r.check(250)
        c.quit()
    return queue_id_of(r)


def test_version():
    for prog, name in ((SLUICED, "sluiced"), (SLUICECTL, "sluicectl")):
        for flag in ("-V", "--version"):
            p = subprocess.run([str(prog), flag], capture_output=True,
                               text=True, timeout=10)
            assert p.returncode == 0, p.stderr
            assert p.stdout == f"{name} {VERSION}\n"


def test_detached_ready_when_start_returns(tmp_path):
    s = Sluice(tmp_path / "d")
    pidfile = tmp_path / "run" / "sluiced.pid"
    asan_log = tmp_path / "asan"
    env = clean_env(ASAN_OPTIONS=f"log_path={asan_log}:abort_on_error=0")
    p = subprocess.run([str(SLUICED), "-c", str(s.conf_path), "-p",
                        str(pidfile)], capture_output=True, text=True,
                       timeout=30, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    pid = int(pidfile.read_text())
    try:
        # Ready means ready: the port accepts as soon as the command is
        # back, without waiting or retrying.
        with Client(s.port) as c:
            assert c.greeting.code == 220
            c.quit()
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "sluiced"
        stat = Path(f"/proc/{pid}/stat").read_text().split()
        assert int(stat[5]) == pid  # its own session (setsid)
        assert os.getsid(0) != pid
        send_one(s.port, "detached")
        if Path("/dev/log").exists():
            assert not (s.log_dir / "sluiced.log").exists()
        else:
            text = (s.log_dir / "sluiced.log").read_text()
            assert f"sluiced {VERSION} ready" in text
        # a second daemon with the same PID file is refused
        p2 = subprocess.run([str(SLUICED), "-c", str(s.conf_path), "-p",
                             str(pidfile)], capture_output=True, text=True,
                            timeout=30, env=env, cwd=tmp_path)
        assert p2.returncode == 1
        assert f"already running as PID {pid}" in p2.stderr
        assert int(pidfile.read_text()) == pid
    finally:
        os.kill(pid, signal.SIGTERM)
    assert wait_gone(pid), "detached sluiced did not stop"
    assert not pidfile.exists(), "PID file left behind"
    reports = list(tmp_path.glob("asan*"))
    assert not reports, reports[0].read_text()


def test_detached_start_failure_fails_the_command(tmp_path):
    s = Sluice(tmp_path / "d")
    pidfile = tmp_path / "sluiced.pid"
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", s.port))
        busy.listen(1)
        p = subprocess.run([str(SLUICED), "-c", str(s.conf_path), "-p",
                            str(pidfile)], capture_output=True, text=True,
                           timeout=30, env=clean_env(), cwd=tmp_path)
    assert p.returncode == 1
    assert f"cannot listen on 127.0.0.1:{s.port}" in p.stderr
    assert not pidfile.exists()


class Notify:
    """A stand-in for systemd's notification socket."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(10)

    def next(self):
        return dict(ln.split("=", 1) for ln in
                    self.sock.recv(4096).decode().splitlines() if "=" in ln)

    def close(self):
        self.sock.close()


def test_systemd_notify(tmp_path):
    s = Sluice(tmp_path / "d")
    n = Notify(tmp_path / "notify")
    err = open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen([str(SLUICED), "-c", str(s.conf_path)],
                            env=clean_env(NOTIFY_SOCKET=n.path,
                                          INVOCATION_ID="0123abcd"),
                            stdout=subprocess.DEVNULL, stderr=err,
                            cwd=tmp_path)
    try:
        msg = n.next()
        assert msg.get("READY") == "1"
        assert msg.get("MAINPID") == str(proc.pid)
        # READY comes after the listeners are bound
        with Client(s.port) as c:
            assert c.greeting.code == 220
            c.quit()
        assert proc.poll() is None, "sluiced detached under systemd"
        proc.send_signal(signal.SIGHUP)
        assert n.next().get("RELOADING") == "1"
        assert n.next().get("READY") == "1"
        proc.send_signal(signal.SIGTERM)
        assert n.next().get("STOPPING") == "1"
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        n.close()
    err.seek(0)
    text = err.read()
    # journal lines: a priority prefix, no time stamp of our own
    assert f"<6>sluiced {VERSION} ready" in text
    assert not re.search(r"^\d{4}-\d\d-\d\dT", text, re.M), text
    assert "ERROR: AddressSanitizer" not in text


def test_invocation_id_alone_stays_in_foreground(tmp_path):
    s = Sluice(tmp_path / "d")
    err = open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen([str(SLUICED), "-c", str(s.conf_path)],
                            env=clean_env(INVOCATION_ID="0123abcd"),
                            stdout=subprocess.DEVNULL, stderr=err,
                            cwd=tmp_path)
    try:

        def serves():
            try:
                with Client(s.port, timeout=2) as c:
                    c.quit()
                return True
            except OSError:
                assert proc.poll() is None, "sluiced exited"
                return False

        eventually(serves, 10)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err.seek(0)
    assert "<6>sluiced" in err.read()


def test_sigusr1_reopens_the_logs(sluice):
    before = send_one(sluice.port, "before")
    files = sluice.tracklog_files()
    assert len(files) == 1
    # its delivery row too, so that nothing of it comes after the move
    eventually(lambda: f"DELIVER,{before}" in Path(files[0]).read_text(), 10,
               "the delivery")
    moved = files[0] + ".1"
    os.rename(files[0], moved)
    sluice.signal(signal.SIGUSR1)
    assert sluice.wait_stderr(r"log files reopened")
    after = send_one(sluice.port, "after")
    assert sluice.tracklog_files() == files  # a new file at the old name
    old = Path(moved).read_text()
    new = Path(files[0]).read_text()
    assert f"RECEIVE,{before}" in old and after not in old
    assert f"RECEIVE,{after}" in new and before not in new
    # nothing else happened: no reload
    assert "reloading" not in sluice.stderr()
