"""The configuration shipped for `make run` (etc/sluice.conf) is valid.

It is checked in a copy of the repository layout (etc/ and run/ in a
temporary directory) so that its relative paths resolve as they do for
`make run`, with a certificate made by scripts/make-cert, and nothing is
written into the working tree."""
import shutil
import subprocess

from harness import ROOT, run_ctl


def test_shipped_config_passes_check(tmp_path):
    (tmp_path / "etc").mkdir()
    shutil.copy(ROOT / "etc" / "sluice.conf", tmp_path / "etc")
    p = subprocess.run([str(ROOT / "scripts" / "make-cert"),
                        str(tmp_path / "run" / "localhost")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    p = run_ctl("-c", "etc/sluice.conf", "config", "check", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr


def test_shipped_config_dumps_default_frontend(tmp_path):
    (tmp_path / "etc").mkdir()
    shutil.copy(ROOT / "etc" / "sluice.conf", tmp_path / "etc")
    subprocess.run([str(ROOT / "scripts" / "make-cert"),
                    str(tmp_path / "run" / "localhost")],
                   capture_output=True, timeout=60, check=True)
    p = run_ctl("-c", "etc/sluice.conf", "get-receiveconnector",
                "Default Frontend", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "127.0.0.1:2525" in p.stdout


def test_shipped_config_serves_the_status_page_on_loopback(tmp_path):
    # `make run` shows the status page and metrics (README tour)
    (tmp_path / "etc").mkdir()
    shutil.copy(ROOT / "etc" / "sluice.conf", tmp_path / "etc")
    subprocess.run([str(ROOT / "scripts" / "make-cert"),
                    str(tmp_path / "run" / "localhost")],
                   capture_output=True, timeout=60, check=True)
    p = run_ctl("-c", "etc/sluice.conf", "get-transportconfig", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    line = [ln for ln in p.stdout.splitlines()
            if ln.startswith("StatusListen")]
    assert line and line[0].split(":", 1)[1].strip() == "127.0.0.1:8025"
    assert "http://127.0.0.1:8025/" in (ROOT / "README.md").read_text()
