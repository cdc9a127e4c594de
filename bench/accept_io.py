#!/usr/bin/python3
"""accept_io.py - what accepting a message costs sluiced, for A/B pairs.

One round: a fresh queue, sluiced ($SLUICE_BUILD/sluiced, the optimised
build by default) with its send connector suspended (mail waits in the
queue, no delivery work), a warm-up of a tenth of the messages, then
`smtpload -c SESSIONS -m MESSAGES -s SIZE`.  Over the measured part it
prints sluiced's CPU per message (utime + stime of all its threads, from
/proc/PID/stat), its bytes written and write calls per message (/proc/PID/
io write_bytes and syscw), msgs/s and the load average.  On a shared
2-core machine msgs/s moves with the load far more than CPU and bytes,
so compare those, with the two builds run back to back, alternating:

  for i in 1 2 3; do
    for b in /tmp/base/build build; do
      SLUICE_BUILD=$b bench/accept_io.py 102400 2000
    done
  done

Usage: accept_io.py SIZE MESSAGES [SESSIONS]
With PERF=FILE in the environment, `perf record -g` of sluiced over the
measured part goes to FILE.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("SLUICE_BUILD", str(ROOT / "build"))
sys.path.insert(0, str(ROOT / "tests" / "it"))
from harness import SLUICECTL, Sluice, free_port  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v)
    return out


def smtpload(tool, port, n, size, sessions):
    p = subprocess.run([tool, "-c", str(sessions), "-m", str(n), "-s",
                        str(size), "-f", "a@example.org", "-t",
                        "u@remote.test", f"127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=900)
    res = dict(ln.split(":", 1) for ln in p.stdout.splitlines()
               if ":" in ln)
    if p.returncode != 0 or int(res.get("accepted", "0")) != n:
        sys.exit(f"smtpload: rc {p.returncode}\n{p.stdout}\n{p.stderr}")
    return float(res["msgs/s"])


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def main():
    size, n = int(sys.argv[1]), int(sys.argv[2])
    sessions = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    with tempfile.TemporaryDirectory(prefix="sluice-accio.") as tmp:
        tool = os.path.join(tmp, "smtpload")
        subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-o", tool,
                        str(ROOT / "bench" / "smtpload.c")], check=True)
        s = Sluice(Path(tmp) / "d",
                   conn={"PermissionGroups": "ExchangeServers",
                         "AuthMechanism": "ExternalAuthoritative",
                         "ProtocolLoggingLevel": "None",
                         "MaxInboundConnectionPerSource": "1000"},
                   transport={"Resolver": "127.0.0.1@9"},
                   raw_extra=f"""
[SendConnector Out]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{free_port()}
ProtocolLoggingLevel = None
""")
        s.start()
        try:
            subprocess.run([str(SLUICECTL), "-c", str(s.conf_path),
                            "suspend", "Out"], check=True,
                           capture_output=True, timeout=60)
            pid = s.proc.pid
            smtpload(tool, s.port, max(n // 10, 20), size, sessions)
            perf = None
            if os.environ.get("PERF"):  # a profile of the measured part
                perf = subprocess.Popen(["perf", "record", "-g", "-q", "-o",
                                         os.environ["PERF"], "-p", str(pid)])
            t0, io0 = ticks(pid), io(pid)
            rate = smtpload(tool, s.port, n, size, sessions)
            t1, io1 = ticks(pid), io(pid)
            if perf is not None:
                perf.send_signal(2)
                perf.wait(60)
            queue = du(s.queue_dir)
        finally:
            s.stop()
    cpu = (t1 - t0) / HZ / n * 1000
    wb = (io1["write_bytes"] - io0["write_bytes"]) / n / 1024
    cw = (io1["syscw"] - io0["syscw"]) / n
    load = open("/proc/loadavg").read().split()[0]
    print(f"{os.environ['SLUICE_BUILD']}: {n} x {size}: cpu {cpu:.3f} ms/msg,"
          f" written {wb:.1f} KB/msg, {cw:.1f} write calls/msg,"
          f" {rate:.0f} msgs/s, queue {queue / 1048576:.0f} MB, load {load}",
          flush=True)


if __name__ == "__main__":
    main()
