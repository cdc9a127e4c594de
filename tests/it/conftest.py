"""pytest fixtures for tests/it; the harness itself is in harness.py.

- `sluice_factory(**kw)`: make and start a `harness.Sluice`; every daemon
  made is stopped at the end of the test and must exit cleanly (status 0,
  no sanitizer report).
- `sluice`: one running daemon with the default test configuration.
- `shared_sluice`: one default daemon shared by a module's tests.
- `pki`: a test PKI (tests/pki/make-pki.sh) made once per session.
- Every test is bounded by SIGALRM: 60 s, or @pytest.mark.timeout_s(N).
"""
import signal
import subprocess

import pytest

from harness import ROOT, Sluice, sluice_fixture

DEFAULT_TEST_TIMEOUT = 60  # seconds per test


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "timeout_s(n): bound this test to n seconds (SIGALRM)")


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _bounded_time(request):
    mark = request.node.get_closest_marker("timeout_s")
    limit = int(mark.args[0]) if mark else DEFAULT_TEST_TIMEOUT

    def expired(signum, frame):
        raise TestTimeout(f"test exceeded {limit} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def sluice_factory(tmp_path):
    """Make (and finally stop) Sluice instances: factory(**Sluice kwargs)."""
    made = []

    def make(start=True, name=None, **kw):
        s = Sluice(tmp_path / (name or f"s{len(made)}"), **kw)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    errors = []
    for s in made:
        try:
            s.stop()
        except BaseException as ex:  # noqa: BLE001 - report every daemon
            s.kill9()
            errors.append(f"{s.dir}: {ex}")
    if errors:
        pytest.fail("daemon did not stop cleanly: " + "; ".join(errors),
                    pytrace=False)


@pytest.fixture
def sluice(sluice_factory):
    """A running sluiced with the default test configuration."""
    return sluice_factory()


# One default sluiced shared by a module's read-mostly tests.
shared_sluice = sluice_fixture("shared_sluice")




@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """Certificates for the TLS tests, made at test time (see
    tests/pki/README.md for what each file is)."""
    d = tmp_path_factory.mktemp("pki")
    subprocess.run([str(ROOT / "tests/pki/make-pki.sh"), str(d)], check=True,
                   timeout=60)
    return d
