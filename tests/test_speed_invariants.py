"""The speed-ups must never change a report: cached, uncached and partly cached runs say the same.

No test here measures time (timings flake on shared machines); benchmarks/run.py does that. These
tests check what the caches may and may not do: the rule cache and the guide-data (knowledge) cache
give byte-identical JSON reports, a corrupt cache or one written by another version is ignored,
``XDG_CACHE_HOME`` decides where the caches live, and ``--no-cache`` neither reads nor writes them.
"""
from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import logsource_checker
from logsource_checker import knowledge, loader

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RULES = ROOT / "samples" / "rules"
GPRESULT = ROOT / "samples" / "gpresult" / "advanced-audit.xml"


def _policy_args() -> list[str]:
    return ["--gpresult", str(GPRESULT)] if GPRESULT.is_file() else []


def _cache_files() -> list[Path]:
    folder = Path(os.environ["XDG_CACHE_HOME"]) / "logsource-checker"
    return sorted(p for p in folder.glob("*.pickle")) if folder.is_dir() else []


@pytest.fixture
def report(cli):
    """report(path, *extra) -> the JSON report text; the in-process guide-data memo is cleared first,
    so every call really goes through the on-disk caches (or around them with --no-cache)."""

    def run(path: Path, *extra: str) -> str:
        knowledge.load.cache_clear()
        result = cli(path, "--format", "json", "--verbose", *_policy_args(), *extra)
        assert result.exit_code in (0, 1), result.stderr
        assert result.stdout.startswith("{")
        return result.stdout

    yield run
    knowledge.load.cache_clear()


def _cached_equals_uncached(report, folder: Path) -> None:
    reference = report(folder, "--no-cache")
    assert _cache_files() == []
    assert report(folder) == reference          # cold: fills both caches
    assert {p.name.split("-")[0] for p in _cache_files()} == {"rules", "knowledge"}
    assert report(folder) == reference          # warm: everything from the caches
    first = sorted(folder.rglob("*.yml"))[0]
    st = first.stat()
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert report(folder) == reference          # warm, one file touched: re-read, same report


def test_cached_and_uncached_reports_identical_on_samples(report, tmp_path):
    folder = tmp_path / "rules"
    shutil.copytree(SAMPLE_RULES, folder)
    _cached_equals_uncached(report, folder)


def test_cached_and_uncached_reports_identical_on_corpus(report, corpus_rules, tmp_path):
    folder = tmp_path / "corpus"
    shutil.copytree(corpus_rules, folder)  # a copy: the test touches and edits files
    _cached_equals_uncached(report, folder)
    # an edited file is never served from the cache
    victim = sorted(folder.rglob("*.yml"))[1]
    edited, count = re.subn(r"(?m)^title: ", "title: Edited ", victim.read_text(encoding="utf-8"), count=1)
    assert count == 1
    victim.write_text(edited, encoding="utf-8")
    fresh = report(folder, "--no-cache")
    assert "Edited " in fresh
    assert report(folder) == fresh


def _garble(paths: list[Path]) -> None:
    for path in paths:
        path.write_bytes(b"\x80\x05not a pickle" + os.urandom(64))


def test_corrupt_caches_are_ignored_and_rewritten(report, tmp_path):
    folder = tmp_path / "rules"
    shutil.copytree(SAMPLE_RULES, folder)
    reference = report(folder, "--no-cache")
    assert report(folder) == reference
    files = _cache_files()
    assert len(files) == 2
    _garble(files)
    assert report(folder) == reference
    for path in files:  # rewritten as valid caches
        with open(path, "rb") as handle:
            assert isinstance(pickle.load(handle), dict)
    for path in files:  # truncated
        path.write_bytes(path.read_bytes()[:50])
    assert report(folder) == reference
    for path in files:  # empty
        path.write_bytes(b"")
    assert report(folder) == reference


def test_caches_of_another_version_are_ignored(report, tmp_path, monkeypatch):
    folder = tmp_path / "rules"
    shutil.copytree(SAMPLE_RULES, folder)
    reference = report(folder, "--no-cache")
    with monkeypatch.context() as m:
        for module in (logsource_checker, loader, knowledge):
            if hasattr(module, "__version__"):
                m.setattr(module, "__version__", "0.0.0+another")
        assert report(folder) == reference
    files = _cache_files()
    assert len(files) == 2
    written = {p: p.read_bytes() for p in files}
    assert report(folder) == reference
    # neither cache was taken as it was: each was rewritten for this version
    assert all(p.read_bytes() != before for p, before in written.items())


def _poison_knowledge_cache() -> None:
    """Change one guide title inside the knowledge cache, keeping its key (so it would be used)."""
    (path,) = [p for p in _cache_files() if p.name.startswith("knowledge-")]
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    for guide in data["knowledge"].guides:
        guide.title = "POISONED " + guide.title
    with open(path, "wb") as handle:
        pickle.dump(data, handle)


def test_knowledge_cache_is_really_used_and_bypassed_by_no_cache(report, tmp_path):
    """A sanity check for the tests above (the cache is read when valid), and --no-cache reads nothing."""
    folder = tmp_path / "rules"
    shutil.copytree(SAMPLE_RULES, folder)
    reference = report(folder, "--no-cache")
    report(folder)
    _poison_knowledge_cache()
    assert "POISONED" in report(folder)                     # same key: the cache is used
    assert report(folder, "--no-cache") == reference         # --no-cache: it is not read


def test_knowledge_cache_of_another_version_is_not_used(report, tmp_path, monkeypatch):
    folder = tmp_path / "rules"
    shutil.copytree(SAMPLE_RULES, folder)
    reference = report(folder, "--no-cache")
    with monkeypatch.context() as m:
        m.setattr(knowledge, "__version__", "0.0.0+another")
        report(folder)
        _poison_knowledge_cache()
    assert report(folder) == reference


def test_knowledge_cache_follows_edited_data(tmp_path):
    """Editing, adding or removing a data file is seen on the next load (never stale data)."""
    root = tmp_path / "data"
    for name in ("guides", "mappings"):
        shutil.copytree(ROOT / name, root / name)
    try:
        knowledge.load.cache_clear()
        fresh = knowledge.load(str(root), use_cache=False)
        knowledge.load.cache_clear()
        first = knowledge.load(str(root))
        knowledge.load.cache_clear()
        cached = knowledge.load(str(root))
        assert first == fresh and cached == fresh and cached is not first
        guide_file = root / fresh.guides[0].path
        edited, count = re.subn(r"(?m)^title: ", "title: Edited ", guide_file.read_text(encoding="utf-8"), count=1)
        assert count == 1
        guide_file.write_text(edited, encoding="utf-8")
        knowledge.load.cache_clear()
        assert knowledge.load(str(root)).guides[0].title.startswith("Edited ")
        extra = guide_file.with_name("zz-extra-copy.yaml")
        shutil.copy(guide_file, extra)
        knowledge.load.cache_clear()
        with_extra = knowledge.load(str(root))
        assert len(with_extra.guides) == len(fresh.guides) + 1
        extra.unlink()
        knowledge.load.cache_clear()
        assert len(knowledge.load(str(root)).guides) == len(fresh.guides)
    finally:
        knowledge.load.cache_clear()


def test_xdg_cache_home_is_honoured_and_no_cache_writes_nothing(tmp_path):
    """Out of process, as users run it: the caches go to $XDG_CACHE_HOME/logsource-checker only."""
    xdg, home = tmp_path / "xdg", tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, XDG_CACHE_HOME=str(xdg), HOME=str(home))
    cmd = [sys.executable, "-m", "logsource_checker", str(SAMPLE_RULES), "--format", "json", *_policy_args()]
    uncached = subprocess.run(cmd + ["--no-cache"], capture_output=True, text=True, timeout=120, env=env)
    assert uncached.returncode in (0, 1), uncached.stderr
    assert not xdg.exists() and list(home.iterdir()) == []   # --no-cache: nothing written anywhere
    cached = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert cached.stdout == uncached.stdout
    names = sorted(p.name.split("-")[0] for p in (xdg / "logsource-checker").iterdir())
    assert names == ["knowledge", "rules"]
    assert list(home.iterdir()) == []
    assert all((p.stat().st_mode & 0o077) == 0 for p in (xdg / "logsource-checker").iterdir())
    # without XDG_CACHE_HOME the caches go to ~/.cache/logsource-checker
    env.pop("XDG_CACHE_HOME")
    default = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert default.stdout == uncached.stdout
    assert len(list((home / ".cache" / "logsource-checker").glob("*.pickle"))) == 2
    # and deleting the cache folder is always safe
    shutil.rmtree(xdg)
    env["XDG_CACHE_HOME"] = str(xdg)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert again.stdout == uncached.stdout


def test_malformed_but_trusted_rule_cache_is_not_used(report, tmp_path):
    """A rule cache of the right version whose entries are damaged is dropped, never half used."""
    folder = tmp_path / "rules"
    shutil.copytree(SAMPLE_RULES, folder)
    reference = report(folder, "--no-cache")
    assert report(folder) == reference
    (path,) = [p for p in _cache_files() if p.name.startswith("rules-")]
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    for damage in (lambda packed: packed[:2], lambda packed: (("x",),) + packed[1:], lambda packed: "text"):
        entries = {p: (key, damage(packed)) for p, (key, packed) in data["entries"].items()}
        with open(path, "wb") as handle:
            pickle.dump({"tag": data["tag"], "entries": entries}, handle)
        path.chmod(0o600)
        assert report(folder) == reference


def _as_lists(result) -> tuple:
    return (repr(result.rules), repr(result.errors), repr(result.others), result.files)


def test_split_parse_equals_serial_parse_and_survives_a_failed_child(corpus_rules, monkeypatch):
    """The parent + forked child split gives what one process gives, also when fork fails or the child dies."""
    from logsource_checker import rules

    serial = rules.load_paths([str(corpus_rules)])
    assert _as_lists(loader.load_rules_fast([str(corpus_rules)], use_cache=False)) == _as_lists(serial)
    with monkeypatch.context() as m:
        m.setattr(loader.os, "fork", lambda: (_ for _ in ()).throw(OSError("no fork")))
        assert _as_lists(loader.load_rules_fast([str(corpus_rules)], use_cache=False)) == _as_lists(serial)
    parent = os.getpid()
    real = loader._parse_packed

    def dies_in_child(files):
        if os.getpid() != parent:
            raise RuntimeError("child failed")
        return real(files)

    with monkeypatch.context() as m:
        m.setattr(loader, "_parse_packed", dies_in_child)
        assert _as_lists(loader.load_rules_fast([str(corpus_rules)], use_cache=False)) == _as_lists(serial)


# --------------------------------------------------------------------------- speed-up round 3

def _typer_internals() -> bool:
    try:
        from typer._coercion import RuntimeParam, build_runtime_param  # noqa: F401
        from typer._param_types import coerce_cli_choice, coerce_cli_path  # noqa: F401
    except ImportError:
        return False
    return True


_ARGVS = [
    ["rules"],
    ["a", "b//c/", "", "-"],
    ["r", "--gpresult", "x.xml", "--gpresult", "y.xml", "--auditpol", "a.csv", "--sysmon-config", "s.xml"],
    ["r", "-f", "json", "-o", "out/report.json", "--level", "high", "--status", "test", "--status", "Stable"],
    ["r", "--format=markdown", "--fail-on", "critical", "--emit", "e", "--docs", "d", "-v", "--no-cache"],
    ["r", "--fail-on", "never", "--level", "informational", "-f", "text", "--output", "é/\udcff.txt"],
    ["r", "-f", "JSON"], ["r", "--level", "nope"], ["r", "--fail-on", ""], ["--gpresult", "x"],
    ["r", "--gpresult"], ["r", "--status"],
]


def _parsed(command, argv: list[str]):
    from typer._click.exceptions import ClickException

    try:
        ctx = command.make_context("check-logsources", list(argv))
    except ClickException as exc:
        return ("error", type(exc).__name__, exc.format_message())
    return {name: (type(value), value if not isinstance(value, list) else [(type(v), v) for v in value])
            for name, value in ctx.params.items()}


@pytest.mark.skipif(not _typer_internals(), reason="this typer has no pydantic-based converters to avoid")
def test_fast_option_conversion_equals_typers_own(tmp_path, monkeypatch):
    """The converters the command installs give exactly what typer's own (pydantic-based) ones give:
    the same values and types, and the same errors word for word."""
    import typer.main

    from logsource_checker.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "x.xml").write_text("<x/>", encoding="utf-8")
    fast = typer.main.get_command(app)
    own = typer.main.get_command(app)
    assert any(param._runtime_param is not None for param in fast.params)
    for param in own.params:
        param._runtime_param = None                   # typer's own converters, built on first use
    for argv in _ARGVS:
        assert _parsed(fast, argv) == _parsed(own, argv), argv


@pytest.mark.skipif(not _typer_internals(), reason="this typer has no pydantic-based converters to avoid")
def test_a_run_does_not_import_pydantic(tmp_path):
    """typer >= 0.2x converts options through pydantic (~55-80 ms to import); a run must not need it."""
    code = (
        "import sys\n"
        "from logsource_checker.cli import app\n"
        "try:\n"
        f"    app([{str(SAMPLE_RULES)!r}, '-f', 'json', '-o', {str(tmp_path / 'r.json')!r}, '--level', 'low',"
        " '--status', 'test', '--fail-on', 'never', '-v'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "r.json").read_text(encoding="utf-8").startswith("{")


def test_resolver_memo_changes_nothing(cli, corpus_rules, monkeypatch):
    """Rules that share log source, EventIDs and fields are resolved once: the report (with every
    need and option, verbose) is the same as when every rule is resolved on its own."""
    from logsource_checker import resolve

    class NoMemo(dict):
        def __setitem__(self, key, value) -> None:
            pass

    real_init = resolve.Resolver.__init__

    def init_without_memo(self, kb) -> None:
        real_init(self, kb)
        self._rule_memo = NoMemo()

    for folder in (SAMPLE_RULES, corpus_rules):
        args = (folder, "--format", "json", "--verbose", "--no-cache", *_policy_args())
        memo = cli(*args).stdout
        with monkeypatch.context() as m:
            m.setattr(resolve.Resolver, "__init__", init_without_memo)
            plain = cli(*args).stdout
        assert memo.startswith("{") and memo == plain


def test_guide_data_read_by_yaml_rs_equals_pyyaml():
    """The guide data parsed by yaml_rs (where the rule loader's proof allows) is the same Knowledge as
    parsed by PyYAML alone; texts yaml_rs might read differently go to PyYAML."""
    base = knowledge.data_root()
    files = knowledge._data_files(base)
    fast = knowledge._load_files(base, files)
    real = knowledge._read_yaml_fast
    try:
        knowledge._read_yaml_fast = lambda text: None
        slow = knowledge._load_files(base, files)
    finally:
        knowledge._read_yaml_fast = real
    assert fast == slow and pickle.dumps(fast) == pickle.dumps(slow)
    for text in ("a: 1\na: 2\n", "\ufeffa: 1\n", "a: 2024-01-01\n", "a: yes\n", "a: 0123\n", "a: 1.5\n",
                 "- a\n", "", "a: &x 1\nb: *x\n", "a: !!str 1\n", "---\na: 1\n", "a: 0x1F\n", "a: ~\n"):
        got = knowledge._read_yaml_fast(text)
        assert got is None or got == knowledge._yaml().load(text, Loader=knowledge._Loader), text
    assert knowledge._read_yaml_fast("a: b\nc: [1, 'x']\n") == {"a": "b", "c": [1, "x"]}


def test_paused_gc_restores_the_collector():
    import gc

    from logsource_checker.engine import paused_gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
