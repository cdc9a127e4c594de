#!/usr/bin/python3
"""memwatch.py - the peak memory of a server while a benchmark runs.

    memwatch.py --pid PID            one process (sluiced)
    memwatch.py --env KEY=VALUE      every process with that variable in its
                                     environment (a private Postfix
                                     instance: MAIL_CONFIG=its config dir)

Every INTERVAL (0.05 s) it sums the RSS and the PSS (proportional set
size: shared pages divided among the processes that map them, the fair
figure for a server of many processes) over the processes, from
/proc/PID/smaps_rollup, and keeps the highest sums.  On SIGTERM or SIGINT
it prints "peak_rss_kb peak_pss_kb samples" and exits.  A peak between two
samples can be missed; for one process, /proc/PID/status VmHWM is the
exact peak RSS (relay.sh reads it too).
"""
import argparse
import os
import signal
import sys
import time

INTERVAL = 0.05


def pids_with_env(key, value):
    want = f"{key}={value}".encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    out.append(int(entry))
        except OSError:
            continue
    return out


def mem_kb(pid):
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--pid", type=int)
    g.add_argument("--env")
    a = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    key, _, value = (a.env or "").partition("=")
    peak_rss = peak_pss = samples = 0
    while not stop:
        # smtpd, cleanup and smtp processes come and go: look each time
        pids = [a.pid] if a.pid else pids_with_env(key, value)
        rss = pss = 0
        for p in pids:
            r, s = mem_kb(p)
            rss += r
            pss += s
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        samples += 1
        time.sleep(INTERVAL)
    print(peak_rss, peak_pss, samples)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
