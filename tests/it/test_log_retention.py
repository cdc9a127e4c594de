"""Log retention with Exchange's keys ([Transport]
MessageTrackingLogMaxAge, ...MaxDirectorySize and the same for the
receive and send protocol logs), on a daemon whose logs' clock the test
moves days ahead (SLUICE_TEST_LOG_CLOCK, read by the test build only:
src/log/logclock.h)."""
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from harness import Client, eventually, make_message, queue_id_of, run_ctl

DAY = 86400


class Clock:
    def __init__(self, path):
        self.path = path
        self.set(0)

    def set(self, days):
        self.days = days
        self.path.write_text(str(days * DAY))

    def day(self, days=None):
        d = datetime.now(timezone.utc) + timedelta(
            days=self.days if days is None else days)
        return d.strftime("%Y%m%d")


def send(s, n=1):
    ids = []
    with Client(s.port) as c:
        c.ehlo()
        for i in range(n):
            r = c.send_message("a@sender.example", ["u@localhost"],
                               make_message(f"m{i}"), ehlo=False)
            ids.append(queue_id_of(r.check(250)))
        c.quit()
    return ids


def wait_delivered(s, ids):
    def delivered():
        text = "".join(Path(f).read_text() for f in s.tracklog_files())
        return all(f"DELIVER,{i}" in text for i in ids)

    eventually(delivered, 15, "the deliveries")


def names(files):
    return sorted(os.path.basename(f) for f in files)


def start(sluice_factory, tmp_path, **transport):
    # Beside the configuration file: the confined daemon may read there.
    s = sluice_factory(transport=transport, start=False)
    clock = Clock(s.conf_path.parent / "clock")
    s.start(env={"SLUICE_TEST_LOG_CLOCK": str(clock.path)})
    return s, clock


def test_max_age(sluice_factory, tmp_path):
    s, clock = start(sluice_factory, tmp_path,
                     MessageTrackingLogMaxAge="2d",
                     ReceiveProtocolLogMaxAge="2d")
    d0 = clock.day()
    wait_delivered(s, send(s))
    clock.set(1)
    d1 = clock.day()
    wait_delivered(s, send(s))
    assert names(s.tracklog_files()) == [f"MSGTRK{d0}-1.LOG",
                                         f"MSGTRK{d1}-1.LOG"]
    # Three days on, day 0 ended more than two days ago; day 1 did not.
    clock.set(3)
    d3 = clock.day()
    wait_delivered(s, send(s))
    assert names(s.tracklog_files()) == [f"MSGTRK{d1}-1.LOG",
                                         f"MSGTRK{d3}-1.LOG"]
    assert names(s.protolog_files()) == [f"RECV{d1}-1.LOG",
                                         f"RECV{d3}-1.LOG"]
    assert s.wait_stderr(rf"log retention: removed \S+/MSGTRK{d0}-1\.LOG "
                         r"\(older than MaxAge\)")


def test_max_directory_size(sluice_factory, tmp_path):
    limit = 3000
    s, clock = start(sluice_factory, tmp_path,
                     MessageTrackingLogMaxDirectorySize=limit)
    days = []
    for day in range(6):
        clock.set(day)
        days.append(clock.day())
        wait_delivered(s, send(s, 3))
        files = s.tracklog_files()
        total = sum(os.path.getsize(f) for f in files)
        current = f"MSGTRK{days[-1]}-1.LOG"
        assert current in names(files)
        # what is left is the newest days, without a gap
        assert names(files) == [f"MSGTRK{d}-1.LOG"
                                for d in days[-len(files):]]
        # the limit held when the day's file was opened: with its
        # first rows it was within, or it was alone
        assert total - os.path.getsize(
            [f for f in files if f.endswith(current)][0]) <= limit
    assert len(s.tracklog_files()) < 6, "nothing was ever removed"


def test_reload_applies_new_limits_at_once(sluice_factory, tmp_path):
    s, clock = start(sluice_factory, tmp_path)
    for day in (0, 1, 2):
        clock.set(day)
        wait_delivered(s, send(s))
    assert len(s.tracklog_files()) == 3
    s.configure(transport={"MessageTrackingLogMaxAge": "00:00:01",
                           "ReceiveProtocolLogMaxAge": "00:00:01"})
    p = run_ctl("-c", s.conf_path, "reload")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "MessageTrackingLogMaxAge" in p.stdout
    # no new row needed: the reload itself removed them
    assert names(s.tracklog_files()) == [f"MSGTRK{clock.day()}-1.LOG"]
    assert names(s.protolog_files()) == [f"RECV{clock.day()}-1.LOG"]
