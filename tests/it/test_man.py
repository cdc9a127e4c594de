"""The man pages (make man): sluice.conf(5) is generated from the key
table (`sluicectl config keys`) and docs/config.md, and the generator
refuses to write it when the two disagree; sluicectl(8)'s commands come
from the command table; every page passes man's own checks (those
lintian runs); the Debian changelog carries the programs' version."""
import re
import subprocess

import pytest

from harness import ROOT, SLUICECTL, SLUICED, VERSION

GEN = ROOT / "man" / "gen-conf-man"
MAN = ROOT / "build" / "man"


@pytest.fixture(scope="module")
def pages():
    p = subprocess.run(["make", "-C", str(ROOT), "man"], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return {f.name: f for f in MAN.glob("*.[58]")}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.tsv"
    p = subprocess.run([str(SLUICECTL), "config", "keys"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    path.write_text(p.stdout)
    return path


def check(keys, md):
    return subprocess.run([str(GEN), "--check", str(keys), str(md)],
                          capture_output=True, text=True, timeout=30)


def test_docs_agree_with_the_key_table(keys):
    p = check(keys, ROOT / "docs" / "config.md")
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("edit, error", [
    # a key the documentation forgot
    (lambda t: re.sub(r"^\| `MaxSendSize` \|.*\n", "", t, flags=re.M),
     "[Transport] MaxSendSize: in the key table, not in docs/config.md"),
    # a default documented differently from the code
    (lambda t: t.replace("| `MaxHopCount` | number 1–500 | `60` |",
                         "| `MaxHopCount` | number 1–500 | `30` |"),
     '[ReceiveConnector] MaxHopCount: default is "60" in the key table, '
     "docs/config.md says `30`"),
    # a key the code does not have
    (lambda t: t.replace("| `Port` | port |",
                         "| `Portal` | port | `1` | x | y |\n| `Port` | port |"),
     "[SendConnector] Portal: in docs/config.md, not in the key table"),
])
def test_disagreement_is_an_error(keys, tmp_path, edit, error):
    text = (ROOT / "docs" / "config.md").read_text()
    changed = edit(text)
    assert changed != text
    md = tmp_path / "config.md"
    md.write_text(changed)
    p = check(keys, md)
    assert p.returncode == 1
    assert f"gen-conf-man: {error}" in p.stderr.splitlines()
    # and no page is written from it
    p = subprocess.run([str(GEN), str(keys), str(md), VERSION],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and p.stdout == ""


def test_conf_page_has_every_key_with_its_default(pages, keys):
    page = pages["sluice.conf.5"].read_text()
    sections = {}
    for chunk in page.split("\n.SH ")[1:]:
        m = re.match(r"\[(\w+)", chunk)
        if m:
            sections[m.group(1).lower()] = chunk
    for line in keys.read_text().splitlines():
        section, key, typ, default = line.split("\t")[:4]
        chunk = sections[section.lower()]
        assert f"\n.B {key}\n" in chunk, (section, key)
        entry = chunk.split(f"\n.B {key}\n", 1)[1].split("\n.TP", 1)[0]
        if default not in ("", "(derived)", "(required)"):
            shown = default.replace("-", "\\-").replace(":", ":\\:")
            assert f"default \\fB{shown}\\fR" in entry, (key, entry)
        elif default == "":
            assert "default empty" in entry, (key, entry)
    assert f'"Sluice {VERSION}"' in page


def test_sluicectl_page_has_every_command(pages):
    page = pages["sluicectl.8"].read_text()
    assert "@COMMANDS@" not in page
    listing = subprocess.run([str(SLUICECTL), "help"], capture_output=True,
                             text=True, timeout=30).stdout
    # a command's line starts with two spaces; a long usage puts its
    # summary on a line of its own, indented further
    lines = [ln for ln in listing.split("commands:\n", 1)[1].splitlines()
             if ln.strip() and not ln.startswith("   ")]
    assert len(lines) >= 18
    for ln in lines:
        # "  config check   summary": its name is a prefix of the line
        first = ln.split()[0].replace("-", "\\-")
        assert f".TP\n\\fB{first}" in page, ln
    assert page.count("\n.TP\n\\fB") >= len(lines)


def test_sluiced_page_has_every_option(pages):
    page = pages["sluiced.8"].read_text()
    usage = subprocess.run([str(SLUICED), "--help"], capture_output=True,
                           text=True, timeout=30).stdout
    for opt in re.findall(r"^  (-\w)", usage, re.M):
        assert f".B \\{opt}" in page or f".BI \\{opt}" in page or \
            f".BR \\{opt}" in page, opt


def test_pages_pass_man_checks(pages):
    assert set(pages) == {"sluiced.8", "sluicectl.8", "sluice-sendmail.8",
                          "sluice.conf.5"}
    for name, path in pages.items():
        # what lintian's manpage check runs
        p = subprocess.run(
            ["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z",
             str(path)], capture_output=True, text=True, timeout=60,
            env={"LC_ALL": "C.UTF-8", "MANROFFSEQ": "", "MANWIDTH": "80",
                 "PATH": "/usr/bin:/bin"})
        assert p.returncode == 0 and p.stderr == "", (name, p.stderr)


def test_changelog_carries_the_version():
    first = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    assert re.match(rf"sluice \({re.escape(VERSION)}(-\S+)?\) ", first), first
