"""`make install` with PREFIX and DESTDIR: the programs, the man pages,
the systemd unit with its paths filled in, and the production
configuration, which a second install never replaces."""
import os
import stat
import subprocess

from harness import ROOT


def install(destdir, *args):
    p = subprocess.run(["make", "-C", str(ROOT), "install",
                        f"DESTDIR={destdir}", *args],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_install_prefix_usr(tmp_path):
    d = tmp_path / "dest"
    install(d, "PREFIX=/usr")
    for prog in ("sluiced", "sluicectl", "sluice-sendmail"):
        assert mode(d / "usr/sbin" / prog) == 0o755
    for page in ("man5/sluice.conf.5", "man8/sluiced.8", "man8/sluicectl.8",
                 "man8/sluice-sendmail.8"):
        assert mode(d / "usr/share/man" / page) == 0o644
    unit = (d / "usr/lib/systemd/system/sluice.service").read_text()
    assert "ExecStart=/usr/sbin/sluiced -c /etc/sluice/sluice.conf\n" in unit
    assert "@" not in unit.replace("@system-service", "").replace(
        "@privileged", "")
    conf = d / "etc/sluice/sluice.conf"
    assert mode(conf) == 0o644
    assert conf.read_text() == (ROOT / "etc/dist/sluice.conf").read_text()
    # no users, links or directories of the package's
    assert not (d / "usr/sbin/sendmail").exists()
    assert not (d / "var").exists()
    # the installed configuration is the administrator's from now on
    conf.write_text(conf.read_text() + "\n; mine\n")
    install(d, "PREFIX=/usr")
    assert conf.read_text().endswith("; mine\n")


def test_install_prefix_usr_local(tmp_path):
    d = tmp_path / "dest"
    install(d, "PREFIX=/usr/local")
    assert (d / "usr/local/sbin/sluiced").exists()
    assert (d / "usr/local/share/man/man5/sluice.conf.5").exists()
    unit = (d / "usr/local/lib/systemd/system/sluice.service").read_text()
    assert "ExecStart=/usr/local/sbin/sluiced -c /etc/sluice/sluice.conf" \
        in unit
    # the programs read /etc/sluice/sluice.conf whatever the prefix
    assert (d / "etc/sluice/sluice.conf").exists()
    # and what was installed runs
    p = subprocess.run([str(d / "usr/local/sbin/sluiced"), "--version"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("sluiced ")
