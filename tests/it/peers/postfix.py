#!/usr/bin/python3
"""Private Postfix and smtp-sink peers for the black-box tests and the bench.

`Postfix` runs a PRIVATE Postfix instance of Debian's package, never the
system one: its own configuration directory (main.cf and master.cf
generated here, started with `postfix -c DIR`), its own queue_directory and
data_directory, its log in a file (`maillog_file` written by postlogd), and
smtpd on one loopback address and port of the caller's choosing.  Nothing
under /etc/postfix or /var/spool/postfix is touched, port 25 is never bound,
and no chroot is used.  Every process of the instance carries
MAIL_CONFIG=<its config dir> in its environment; that is how stop() finds
and reaps exactly the processes it started, and how smtpd_memory() finds
the instance's smtpd processes.

Postfix's daemons run as the `postfix` user and must be able to enter the
queue directory, so the instance lives in a 0755 directory whose ancestors
are all traversable (pytest's tmp_path is not: /tmp/pytest-of-root is
0700).  By default a fresh directory is made under /tmp.

`SmtpSink` runs /usr/sbin/smtp-sink on a loopback port, with its running
counters (-c) parsed so a test can wait for N messages, and optionally a
dump directory (-d) holding one file per received transaction.

Used from Python (tests/it) or as a small command line tool (bench/):

    postfix.py start --dir DIR --port PORT [--accept DOMAIN] [--hold] ...
    postfix.py count --dir DIR         messages in the instance's queues
    postfix.py smtpd-mem --dir DIR     "procs rss_kb pss_kb" of its smtpd
    postfix.py stop --dir DIR [--keep]
"""
import argparse
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX_FILES = "/etc/postfix/postfix-files"  # read only: dirs and modes

START_TIMEOUT = 30.0  # `postfix start` runs integrity checks (find) first
STOP_TIMEOUT = 10.0  # SIGTERM to the master until every process is gone
POLL = 0.02  # seconds between checks while waiting

# Queues that hold messages the instance has accepted (not yet delivered).
# defer/bounce/trace hold per-message logs, not messages; corrupt is
# counted because a message there was accepted and then lost.
MESSAGE_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold",
                  "corrupt")

# The virtual(8) delivery agent refuses uids below virtual_minimum_uid
# (100); the postfix account is a system user above it on Debian.
MAIL_OWNER = "postfix"
SETGID_GROUP = "postdrop"


class PeerError(Exception):
    pass


def _listening(host, port):
    """True when a TCP socket listens on host:port (from /proc/net, so
    that waiting for a peer does not open a session it would log)."""
    packed = socket.inet_pton(socket.AF_INET6 if ":" in host
                              else socket.AF_INET, host)
    # /proc/net/tcp{,6} print addresses as 32-bit words in host order.
    words = [packed[i:i + 4] for i in range(0, len(packed), 4)]
    want_addr = "".join(w[::-1].hex().upper() for w in words)
    want = f"{want_addr}:{port:04X}"
    table = "/proc/net/tcp6" if ":" in host else "/proc/net/tcp"
    with open(table) as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":  # TCP_LISTEN
                return True
    return False


def _wait_port(host, port, timeout):
    deadline = time.monotonic() + timeout
    while not _listening(host, port):
        if time.monotonic() > deadline:
            raise PeerError(f"nothing listens on {host}:{port}")
        time.sleep(POLL)


def _check_traversable(path):
    """Postfix daemons (user postfix) must reach the queue directory."""
    p = Path(path).resolve()
    for d in [p] + list(p.parents):
        if not d.stat().st_mode & 0o001:
            raise PeerError(
                f"{d} is not traversable by other users; the postfix "
                f"daemons could not reach {path}")


def _pids_with_env(key, value):
    """Pids of processes whose environment holds key=value exactly."""
    want = f"{key}={value}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue  # gone, or a kernel thread
        if want in env:
            pids.append(int(entry))
    return pids


def _proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _proc_mem_kb(pid):
    """(rss, pss) in KiB from smaps_rollup, or None if the process left."""
    rss = pss = None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        return None
    if rss is None or pss is None:
        return None
    return rss, pss


def _count_files(top):
    n = 0
    for _dirpath, _dirs, files in os.walk(top):
        n += len(files)
    return n


def _cf_list(values):
    if isinstance(values, str):
        return values
    return ", ".join(values)


class Postfix:
    """A private Postfix instance; see the module comment.

    Arguments (all keyword except port):
    - host: the address smtpd listens on (127.x.y.z or ::1);
      inet_interfaces is set to it.
    - mydestination, relay_domains, relayhost, mynetworks: as in main.cf
      (strings or lists).  mynetworks defaults to 127.0.0.0/8, so loopback
      clients may relay; pass () to make the instance an MX that accepts
      only its own domains.
    - mailbox_domains: domains delivered by virtual(8) into one Maildir,
      <dir>/mail/Maildir (any local part is accepted); see delivered().
    - transport: {domain: "smtp:[127.0.0.1]:2525", ...} (transport_maps).
    - hold: put every accepted message on hold (an access-table HOLD
      action at DATA), so it stays in the hold queue: the mode the bench
      uses to compare queueing without delivery.
    - tls: {"cert": PEM, "key": PEM, "level": "may" | "encrypt",
      "ca": CA file, "ask_ccert": bool} for smtpd; client TLS (smtp_tls_*)
      goes into `main`.
    - smtpd_process_limit: maxproc of the smtpd service (one process per
      connection); default_process_limit is raised to match.
    - smtpd_options: {"name": "value"} as -o overrides on the smtpd line.
    - main: {"name": "value"} extra or overriding main.cf parameters.
    - base: where the instance directory is made (default /tmp); dir: use
      this directory instead (made if missing).
    - resolv_conf: a resolv.conf for this instance alone (the DANE tests:
      a validating unbound on loopback, peers/unbound.py).  Postfix reads
      /etc/resolv.conf, so the instance is started in a mount namespace
      of its own (unshare -m) where that file is bind-mounted over it;
      every process of the instance inherits the namespace, nothing else
      on the machine sees it.
    """

    def __init__(self, port, host="127.0.0.1", *, myhostname="postfix.test",
                 mydestination=(), relay_domains=(), relayhost="",
                 mynetworks=("127.0.0.0/8",), mailbox_domains=(),
                 transport=None, hold=False, tls=None,
                 smtpd_process_limit=100, smtpd_options=None, main=None,
                 base=None, dir=None, resolv_conf=None):
        self.port = port
        self.host = host
        self.myhostname = myhostname
        self.mydestination = mydestination
        self.relay_domains = relay_domains
        self.relayhost = relayhost
        self.mynetworks = mynetworks
        self.mailbox_domains = mailbox_domains
        self.transport = transport or {}
        self.hold = hold
        self.tls = tls
        self.smtpd_process_limit = smtpd_process_limit
        self.smtpd_options = smtpd_options or {}
        self.main = main or {}
        self.resolv_conf = resolv_conf
        if dir is not None:
            self.dir = Path(dir).resolve()
            self.dir.mkdir(parents=True, exist_ok=True)
            self._made_dir = False
        else:
            self.dir = Path(tempfile.mkdtemp(prefix="sluice-postfix-",
                                             dir=base or "/tmp"))
            self._made_dir = True
        os.chmod(self.dir, 0o755)
        self._set_paths()
        self.started = False

    def _set_paths(self):
        self.conf_dir = self.dir / "etc"
        self.queue_dir = self.dir / "queue"
        self.data_dir = self.dir / "data"
        self.mail_dir = self.dir / "mail"
        self.log_file = self.dir / "maillog"

    @classmethod
    def attach(cls, dir):
        """The instance living in dir, for count/stop from another process."""
        self = cls.__new__(cls)
        self.dir = Path(dir).resolve()
        self._made_dir = True
        self._set_paths()
        self.started = True
        if not (self.conf_dir / "main.cf").exists():
            raise PeerError(f"{dir}: no Postfix instance here")
        return self

    # --- configuration ----------------------------------------------------

    def _main_cf(self):
        ipv6 = ":" in self.host
        pw = pwd.getpwnam(MAIL_OWNER)
        p = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": MAIL_OWNER,
            "setgid_group": SETGID_GROUP,
            "myhostname": self.myhostname,
            "mydomain": self.myhostname.partition(".")[2] or "test",
            "myorigin": "$myhostname",
            "inet_interfaces": self.host,
            "inet_protocols": "ipv6" if ipv6 else "ipv4",
            "mynetworks": _cf_list(self.mynetworks),
            "mydestination": _cf_list(self.mydestination),
            "relay_domains": _cf_list(self.relay_domains),
            "relayhost": self.relayhost,
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtpd_banner": "$myhostname ESMTP Postfix",
            # The log is a file the tests read; postlogd (master.cf)
            # writes it.  Postfix only accepts a maillog_file below one
            # of these prefixes.
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.dir),
            # Loopback tests and the bench open many sessions from one
            # address; anvil's per-client limits would refuse them.
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_client_message_rate_limit": "0",
            "smtpd_client_recipient_rate_limit": "0",
            "default_process_limit": str(max(100, self.smtpd_process_limit)),
            # No DNS for tests: never look up MX or A records of a
            # relayhost/transport name (addresses are given in [brackets]).
            "disable_dns_lookups": "yes",
            "smtp_dns_support_level": "disabled",
            "smtpd_tls_security_level": "",
            "smtp_tls_security_level": "",
        }
        if self.mailbox_domains:
            # One Maildir for every recipient: virtual(8) cannot derive
            # a path from the address (regexp substitution is refused for
            # mailbox maps), and its Delivered-To header tells them apart.
            p["virtual_mailbox_domains"] = _cf_list(self.mailbox_domains)
            p["virtual_mailbox_base"] = str(self.mail_dir)
            p["virtual_mailbox_maps"] = "static:Maildir/"
            p["virtual_uid_maps"] = f"static:{pw.pw_uid}"
            p["virtual_gid_maps"] = f"static:{pw.pw_gid}"
        if self.transport:
            pairs = ", ".join(f"{{ {dom} = {nexthop} }}"
                              for dom, nexthop in self.transport.items())
            p["transport_maps"] = "inline:{ " + pairs + " }"
        if self.hold:
            p["smtpd_data_restrictions"] = "check_client_access static:HOLD"
        if self.tls:
            p["smtpd_tls_security_level"] = self.tls.get("level", "may")
            p["smtpd_tls_cert_file"] = str(self.tls["cert"])
            p["smtpd_tls_key_file"] = str(self.tls["key"])
            if self.tls.get("ca"):
                p["smtpd_tls_CAfile"] = str(self.tls["ca"])
            if self.tls.get("ask_ccert"):
                p["smtpd_tls_ask_ccert"] = "yes"
            p["smtpd_tls_loglevel"] = "1"
        p.update({k: str(v) for k, v in self.main.items()})
        if not p["relayhost"] and "default_transport" not in p:
            # Mail for other domains fails at once instead of looking up
            # the next hop (no live DNS); transport entries override it.
            p["default_transport"] = "error:no outbound mail from this peer"
        return "".join(f"{k} = {v}\n" for k, v in p.items())

    def _master_cf(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        lines = [
            "# service type  private unpriv chroot wakeup maxproc command",
            f"{host}:{self.port} inet n - n - {self.smtpd_process_limit} "
            "smtpd",
        ]
        lines += [f"  -o {k}={v}" for k, v in self.smtpd_options.items()]
        # The internal services of a stock master.cf, without chroot.
        lines += [
            "pickup fifo n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "tlsmgr unix - - n 1000? 1 tlsmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "proxywrite unix - - n - 1 proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "local unix - n n - - local",
            "virtual unix - n n - - virtual",
            "lmtp unix - - n - - lmtp",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        return "\n".join(lines) + "\n"

    def write_config(self):
        self.conf_dir.mkdir(exist_ok=True)
        self._make_dirs()
        (self.conf_dir / "main.cf").write_text(self._main_cf())
        (self.conf_dir / "master.cf").write_text(self._master_cf())
        # Postfix reads a configuration file that changed within the
        # last second again and again (300 ms apart) until it is stable;
        # date ours back so that start costs no such wait.
        past = time.time() - 60
        for f in ("main.cf", "master.cf"):
            os.utime(self.conf_dir / f, (past, past))
        # The queue directories exist now with Postfix's own owners and
        # modes, so skip the integrity check of `postfix start` (post-install
        # and a dozen finds, about a second): postfix-script honours this
        # file once.
        (self.queue_dir / "quick-start").touch()
        self.log_file.touch()
        if self.mailbox_domains:
            pw = pwd.getpwnam(MAIL_OWNER)
            self.mail_dir.mkdir(exist_ok=True)
            os.chown(self.mail_dir, pw.pw_uid, pw.pw_gid)

    def _make_dirs(self):
        """The queue and data directories with the owners and modes of
        Postfix's own table (postfix-files).  `postfix start` would make
        them too, but with a few hundred forked commands (about 2 s); done
        here, its integrity check only has to confirm them."""
        subst = {"$queue_directory": str(self.queue_dir),
                 "$data_directory": str(self.data_dir)}
        users = {"$mail_owner": MAIL_OWNER, "root": "root", "-": None}
        groups = {"$setgid_group": SETGID_GROUP, "-": None}
        with open(POSTFIX_FILES) as f:
            for line in f:
                fields = line.strip().split(":")
                if len(fields) < 5 or fields[1] != "d":
                    continue
                top, sep, rest = fields[0].partition("/")
                if top not in subst:
                    continue
                path = Path(subst[top] + sep + rest)
                path.mkdir(exist_ok=True)
                # postfix-files fields: path:type:owner:group:mode:flags
                uid = pwd.getpwnam(users[fields[2]]).pw_uid \
                    if users.get(fields[2]) else -1
                gid = grp.getgrnam(groups[fields[3]]).gr_gid \
                    if groups.get(fields[3]) else -1
                os.chown(path, uid, gid)
                os.chmod(path, int(fields[4], 8))

    # --- life cycle -------------------------------------------------------

    def _env(self):
        env = dict(os.environ)
        env["MAIL_CONFIG"] = str(self.conf_dir)
        return env

    def _run(self, *args, check=True, timeout=START_TIMEOUT):
        cmd = [POSTFIX, "-c", str(self.conf_dir), *args]
        if self.resolv_conf is not None and args[:1] == ("start",):
            cmd = ["unshare", "-m", "sh", "-c",
                   'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                   str(self.resolv_conf)] + cmd
        p = subprocess.run(cmd, env=self._env(), capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise PeerError(f"postfix {' '.join(args)} failed "
                            f"({p.returncode}): {p.stderr.strip()}\n"
                            f"log:\n{self.log_text()[-2000:]}")
        return p

    def start(self):
        _check_traversable(self.dir)
        self.write_config()
        try:
            self._run("start")
            self.started = True
            _wait_port(self.host, self.port, START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def pids(self):
        """Every live process of this instance (master and children)."""
        return _pids_with_env("MAIL_CONFIG", str(self.conf_dir))

    def master_pid(self):
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text())
        except (OSError, ValueError):
            return None

    def stop(self):
        """SIGTERM the master, wait until no process of ours is left
        (SIGKILL after STOP_TIMEOUT).  Faster than `postfix stop`, which
        sleeps in whole seconds."""
        master = self.master_pid()
        if master is not None and master in self.pids():
            try:
                os.kill(master, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.pids():
            if time.monotonic() > deadline:
                for pid in self.pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)
                break
            time.sleep(POLL)
        self.started = False
        left = self.pids()
        if left:
            raise PeerError(f"postfix processes survived SIGKILL: {left}")

    def cleanup(self):
        """Remove the instance directory (if this object made it)."""
        if self._made_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def close(self):
        try:
            self.stop()
        finally:
            self.cleanup()

    def __enter__(self):
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # --- observation ------------------------------------------------------

    def log_text(self):
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=10.0):
        """The first match of regex pattern in the log, waiting for it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text())
            if m:
                return m
            if time.monotonic() > deadline:
                raise PeerError(f"{pattern!r} not in the log:\n"
                                f"{self.log_text()[-2000:]}")
            time.sleep(POLL * 5)

    def queue_count(self, queues=MESSAGE_QUEUES):
        """Messages in the given queues (files, hashed subdirectories too)."""
        return sum(_count_files(self.queue_dir / q) for q in queues)

    def queue_ids(self, queue="hold"):
        ids = []
        for _d, _s, files in os.walk(self.queue_dir / queue):
            ids += files
        return sorted(ids)

    def wait_queue(self, n, queues=MESSAGE_QUEUES, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.queue_count(queues) != n:
            if time.monotonic() > deadline:
                raise PeerError(f"{self.queue_count(queues)} messages in "
                                f"{queues}, expected {n}")
            time.sleep(POLL * 5)

    def delivered(self, address=None):
        """Message texts delivered by virtual(8) (mailbox_domains), oldest
        first; with address, only those whose Delivered-To is address."""
        new = self.mail_dir / "Maildir" / "new"
        if not new.is_dir():
            return []
        files = sorted(new.iterdir(), key=lambda f: f.stat().st_mtime_ns)
        texts = [f.read_bytes() for f in files]
        if address is None:
            return texts
        want = f"Delivered-To: {address}".lower().encode()
        return [t for t in texts
                if want in t.partition(b"\n\n")[0].lower().splitlines()]

    def wait_delivered(self, address, n=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.delivered(address)) < n:
            if time.monotonic() > deadline:
                raise PeerError(f"{len(self.delivered(address))} of {n} "
                                f"messages delivered to {address}; log:\n"
                                f"{self.log_text()[-2000:]}")
            time.sleep(POLL * 5)
        return self.delivered(address)

    def smtpd_memory(self):
        """(processes, rss_kb, pss_kb) summed over this instance's smtpd
        processes.  RSS counts shared library pages in every process; PSS
        shares them out and is the fairer figure for many processes."""
        n = rss = pss = 0
        for pid in self.pids():
            if _proc_comm(pid) != "smtpd":
                continue
            mem = _proc_mem_kb(pid)
            if mem is None:
                continue
            n += 1
            rss += mem[0]
            pss += mem[1]
        return n, rss, pss


class SmtpSink:
    """/usr/sbin/smtp-sink on a loopback port, counting what it receives.

    count() is the number of messages ("." received) from smtp-sink's
    running counters; with dump=True every transaction is also written to
    a file under <dir>/dump (messages()).  Extra smtp-sink options (e.g.
    ["-r", "RCPT"] to tempfail recipients) go in `options`.
    """

    def __init__(self, port, host="127.0.0.1", *, dump=False, options=(),
                 backlog=256, base=None):
        self.port = port
        self.host = host
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-sink-",
                                         dir=base or "/tmp"))
        os.chmod(self.dir, 0o755)
        self.dump_dir = self.dir / "dump" if dump else None
        self.out_file = self.dir / "counters"
        self.options = list(options)
        self.backlog = backlog
        self.proc = None

    def start(self):
        _check_traversable(self.dir)
        args = [SMTP_SINK, "-c"]
        if os.geteuid() == 0:
            # smtp-sink refuses to keep root privileges.
            args += ["-u", "nobody"]
        if self.dump_dir is not None:
            self.dump_dir.mkdir()
            os.chown(self.dump_dir, pwd.getpwnam("nobody").pw_uid,
                     grp.getgrnam("nogroup").gr_gid)
            args += ["-d", f"{self.dump_dir}/"]
        host = f"[{self.host}]" if ":" in self.host else self.host
        args += self.options + [f"{host}:{self.port}", str(self.backlog)]
        self._out = open(self.out_file, "wb")
        self.proc = subprocess.Popen(args, stdout=self._out,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        try:
            _wait_port(self.host, self.port, START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def counters(self):
        """The last "sess=N quit=N mesg=N" line as a dict."""
        text = self.out_file.read_text(errors="replace")
        found = re.findall(r"sess=(\d+) quit=(\d+) mesg=(\d+)", text)
        if not found:
            return {"sess": 0, "quit": 0, "mesg": 0}
        s, q, m = found[-1]
        return {"sess": int(s), "quit": int(q), "mesg": int(m)}

    def count(self):
        return self.counters()["mesg"]

    def wait_count(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise PeerError(f"smtp-sink got {self.count()} of {n}")
            time.sleep(POLL * 5)

    def messages(self):
        if self.dump_dir is None:
            return []
        files = sorted((f for f in self.dump_dir.rglob("*") if f.is_file()),
                       key=lambda f: f.stat().st_mtime_ns)
        return [f.read_bytes() for f in files]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._out.close()
        self.proc = None

    def close(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()


# --- command line (bench/) -------------------------------------------------


def _main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start an instance in DIR")
    st.add_argument("--dir", required=True)
    st.add_argument("--port", type=int, required=True)
    st.add_argument("--host", default="127.0.0.1")
    st.add_argument("--accept", action="append", default=[],
                    help="relay_domains entry (repeatable)")
    st.add_argument("--hold", action="store_true",
                    help="keep every accepted message in the hold queue")
    st.add_argument("--mynetworks", default="",
                    help="clients that may relay anywhere (default none)")
    st.add_argument("--process-limit", type=int, default=100)
    st.add_argument("-o", action="append", default=[],
                    metavar="NAME=VALUE", help="extra main.cf parameter")
    st.add_argument("--resolv-conf", default=None,
                    help="a resolv.conf for this instance alone (DANE)")
    for name in ("count", "stop", "smtpd-mem"):
        p = sub.add_parser(name)
        p.add_argument("--dir", required=True)
        if name == "stop":
            p.add_argument("--keep", action="store_true",
                           help="leave DIR in place")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "start":
            main = {}
            for kv in a.o:
                name, eq, value = kv.partition("=")
                if not eq or not name.strip():
                    raise PeerError(f"-o {kv!r}: expected NAME=VALUE")
                main[name.strip()] = value.strip()
            pf = Postfix(a.port, a.host, relay_domains=a.accept,
                         mynetworks=a.mynetworks, hold=a.hold,
                         smtpd_process_limit=a.process_limit, main=main,
                         dir=a.dir, resolv_conf=a.resolv_conf)
            pf.start()
        elif a.cmd == "count":
            print(Postfix.attach(a.dir).queue_count())
        elif a.cmd == "smtpd-mem":
            print(*Postfix.attach(a.dir).smtpd_memory())
        elif a.cmd == "stop":
            pf = Postfix.attach(a.dir)
            pf._made_dir = not a.keep
            pf.close()
    except PeerError as e:
        print(f"postfix.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
