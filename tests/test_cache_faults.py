"""Cache faults (issue 11): a cache entry that is well-formed but wrong is ignored and rebuilt, the cache
never lands in a folder named ``~`` (or anywhere relative to the working folder), and it is pruned.

Each test damages the cache the way it happens in practice (an entry of the right version whose values
have the wrong shape or type, an environment without HOME, years of runs over many rule folders) and
checks that the run still gives exactly the report an uncached run gives.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from logsource_checker import _cache, knowledge

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RULES = ROOT / "samples" / "rules"
GPRESULT = ROOT / "samples" / "gpresult" / "advanced-audit.xml"


def _cache_folder() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "logsource-checker"


def _cache_file(kind: str) -> Path:
    (path,) = sorted(_cache_folder().glob(f"{kind}-*.pickle"))
    return path


def _rewrite(path: Path, data: object) -> None:
    """Write a valid pickle the way the tool does (owned by us, private), so only its content is wrong."""
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    path.chmod(0o600)


@pytest.fixture
def report(cli):
    """report(folder, *extra) -> (exit code, JSON text); the in-process guide-data memo is cleared first."""

    def run(folder: Path, *extra: str) -> tuple[int, str]:
        knowledge.load.cache_clear()
        result = cli(folder, "--format", "json", "--verbose", "--gpresult", GPRESULT, *extra)
        assert result.exit_code in (0, 1), result.stderr
        return result.exit_code, result.stdout

    yield run
    knowledge.load.cache_clear()


@pytest.fixture
def rules_copy(tmp_path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(SAMPLE_RULES, folder)
    return folder


# --------------------------------------------------------------------------- well-formed but wrong entries

def _packed_rule(packed: tuple, index: int, value: object) -> tuple:
    """``packed`` (rules.pack_result) with field ``index`` of its first rule replaced by ``value``."""
    rules = list(packed[0])
    first = list(rules[0])
    first[index] = value
    rules[0] = tuple(first)
    return (tuple(rules),) + packed[1:]


# rules.pack_result field order: path, document, id, title, level, status, product, category, service,
# event_ids, channels, providers, fields, condition, selections, tags
RULE_DAMAGE = {
    "title is a number": lambda p: _packed_rule(p, 3, 123),
    "event_ids is a string": lambda p: _packed_rule(p, 9, "4688"),
    "event_id is a string": lambda p: _packed_rule(p, 9, ("4688",)),
    "product is a list": lambda p: _packed_rule(p, 6, ["windows"]),
    "level is a dict": lambda p: _packed_rule(p, 4, {"high": 1}),
    "document is text": lambda p: _packed_rule(p, 1, "0"),
    "fields is a list": lambda p: _packed_rule(p, 12, ["CommandLine"]),
    "selections is text": lambda p: _packed_rule(p, 14, "selection"),
    "condition holds a number": lambda p: _packed_rule(p, 13, (1,)),
    "tags is a list": lambda p: _packed_rule(p, 15, ["attack.t1059"]),
    "file count is text": lambda p: p[:3] + ("1",),
    "error path is None": lambda p: (p[0], ((None, 1, "x"),), p[2], p[3]),
    "other document is a number": lambda p: (p[0], p[1], (5,), p[3]),
    "rule is a dict": lambda p: ((dict(enumerate(p[0][0])),) + p[0][1:],) + p[1:],
}


@pytest.mark.parametrize("damage", list(RULE_DAMAGE), ids=list(RULE_DAMAGE))
def test_wrong_rule_cache_entry_is_ignored_and_rebuilt(report, rules_copy, damage):
    reference = report(rules_copy, "--no-cache")
    assert report(rules_copy) == reference                     # cold: fills the cache
    path = _cache_file("rules")
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    entries = data["entries"]
    victim = next(p for p, (_key, packed) in sorted(entries.items()) if packed[0])   # a file with a rule
    good = entries[victim]
    entries[victim] = (good[0], RULE_DAMAGE[damage](good[1]))
    _rewrite(path, data)
    assert report(rules_copy) == reference                     # the bad entry is not used ...
    with open(path, "rb") as handle:
        rebuilt = pickle.load(handle)["entries"]
    assert rebuilt[victim] == good                             # ... and is rebuilt
    assert report(rules_copy) == reference


def _break_guides(kb: knowledge.Knowledge) -> None:
    kb.guides = None  # type: ignore[assignment]


def _break_subcategories(kb: knowledge.Knowledge) -> None:
    kb.subcategories = list(kb.subcategories.values())  # type: ignore[assignment]


def _break_guide_events(kb: knowledge.Knowledge) -> None:
    for guide in kb.guides:
        guide.events = list(guide.events.values())  # type: ignore[assignment]


def _break_channel(kb: knowledge.Knowledge) -> None:
    name = next(iter(kb.channels))
    kb.channels[name] = "Security"  # type: ignore[assignment]


def _drop_subcategory(kb: knowledge.Knowledge) -> None:
    kb.subcategories.pop(next(iter(kb.subcategories)))


def _break_by_logsource(kb: knowledge.Knowledge) -> None:
    kb.by_logsource = {key: guide.id for key, guide in kb.by_logsource.items()}  # type: ignore[misc]


KNOWLEDGE_DAMAGE = {
    "guides is None": _break_guides,
    "subcategories is a list": _break_subcategories,
    "guide events are a list": _break_guide_events,
    "a channel is a string": _break_channel,
    "a subcategory is missing": _drop_subcategory,     # validate() would say "inconsistent" (exit 2)
    "by_logsource holds ids": _break_by_logsource,
}


@pytest.mark.parametrize("damage", list(KNOWLEDGE_DAMAGE), ids=list(KNOWLEDGE_DAMAGE))
def test_wrong_knowledge_cache_entry_is_ignored_and_rebuilt(report, rules_copy, damage):
    reference = report(rules_copy, "--no-cache")
    assert report(rules_copy) == reference
    path = _cache_file("knowledge")
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    KNOWLEDGE_DAMAGE[damage](data["knowledge"])
    _rewrite(path, data)                                       # same key: it would be used as it is
    assert report(rules_copy) == reference
    with open(path, "rb") as handle:
        rebuilt = pickle.load(handle)["knowledge"]
    knowledge.load.cache_clear()
    assert rebuilt == knowledge.load(use_cache=False)          # rewritten from the data files
    assert report(rules_copy) == reference


# --------------------------------------------------------------------------- where the cache lives

@pytest.fixture
def no_home(tmp_path, monkeypatch):
    """No HOME, no XDG_CACHE_HOME, no passwd entry (as in a container run under an arbitrary uid), the
    working folder an empty folder, and the temporary folder a test-owned one."""
    import pwd

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)

    def no_entry(uid):  # noqa: ANN001, ANN202
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return work, temp


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX ownership and modes")
@pytest.mark.parametrize("env", [{}, {"HOME": ""}, {"HOME": "relative/home"}, {"XDG_CACHE_HOME": "relative"},
                                 {"HOME": "", "XDG_CACHE_HOME": ""}])
def test_without_a_usable_home_the_cache_is_a_private_temporary_folder(report, rules_copy, no_home, monkeypatch,
                                                                        env):
    work, temp = no_home
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reference = report(rules_copy, "--no-cache")
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []
    assert report(rules_copy) == reference
    assert report(rules_copy) == reference
    assert list(work.iterdir()) == []                          # nothing in the working folder (no "~")
    (folder,) = temp.iterdir()
    st = os.lstat(folder)
    assert folder.is_dir() and not folder.is_symlink()
    assert st.st_uid == os.geteuid() and (st.st_mode & 0o777) == 0o700
    assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["knowledge", "rules"]
    assert os.path.isabs(_cache.cache_dir())


def _foreign_owner(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    os.chown(path, 4242, -1)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX ownership and modes")
@pytest.mark.parametrize("make", [
    pytest.param(lambda p: (p.mkdir(), p.chmod(0o777)), id="world-writable"),
    pytest.param(lambda p: (p.mkdir(), p.chmod(0o750)), id="group-readable"),
    pytest.param(lambda p: (p.mkdir(mode=0o700), _foreign_owner(p)), id="another-owner"),
    pytest.param(lambda p: ((p.parent / "elsewhere").mkdir(mode=0o700), p.symlink_to(p.parent / "elsewhere")),
                 id="symlink"),
    pytest.param(lambda p: p.write_bytes(b""), id="a-file"),
])
def test_a_temporary_cache_folder_that_is_not_private_is_not_used(report, rules_copy, no_home, make):
    """Someone else may create the per-user folder in the shared temporary folder first: then no cache."""
    work, temp = no_home
    reference = report(rules_copy, "--no-cache")
    folder = Path(_cache.cache_dir())
    assert folder.parent == temp
    make(folder)
    before = {p: (p.lstat().st_mode, p.lstat().st_uid) for p in temp.rglob("*")}
    assert report(rules_copy) == reference
    assert report(rules_copy) == reference
    assert {p: (p.lstat().st_mode, p.lstat().st_uid) for p in temp.rglob("*")} == before   # nothing written
    assert list(work.iterdir()) == []


# --------------------------------------------------------------------------- pruning

def _age(path: Path, days: float) -> None:
    when = time.time() - days * 86400
    os.utime(path, (when, when))


def test_old_and_surplus_cache_files_are_pruned(report, rules_copy):
    folder = _cache_folder()
    folder.mkdir(parents=True, mode=0o700)
    rule_caches = []
    for i in range(_cache.MAX_CACHE_FILES["rules"] + 10):
        path = folder / f"rules-{i:024x}.pickle"
        path.write_bytes(b"old")
        path.chmod(0o600)
        _age(path, 1 + i * 0.5)        # rules-0 is the most recently used
        rule_caches.append(path)
    expired = folder / f"knowledge-{'e' * 24}.pickle"
    expired.write_bytes(b"old")
    _age(expired, _cache.MAX_AGE_DAYS + 1)
    stale_tmp = folder / ".rules-abc.tmp"
    stale_tmp.write_bytes(b"half")
    _age(stale_tmp, 2)
    fresh_tmp = folder / ".rules-def.tmp"          # another run may be writing it right now
    fresh_tmp.write_bytes(b"half")
    foreign = folder / "notes.txt"                 # not ours: never removed
    foreign.write_bytes(b"mine")
    _age(foreign, 400)
    reference = report(rules_copy, "--no-cache")
    assert report(rules_copy) == reference         # writes both caches, then prunes
    rules_left = sorted(folder.glob("rules-*.pickle"))
    assert len(rules_left) == _cache.MAX_CACHE_FILES["rules"]
    assert _cache_file_of_this_run(folder) in rules_left
    # the most recently used are kept, the least recently used go
    kept_old = [p for p in rule_caches if p.exists()]
    assert kept_old == rule_caches[:_cache.MAX_CACHE_FILES["rules"] - 1]
    assert not expired.exists() and not stale_tmp.exists()
    assert fresh_tmp.exists() and foreign.exists()
    assert len(list(folder.glob("knowledge-*.pickle"))) == 1
    assert report(rules_copy) == reference         # the caches of this run are used, not pruned


def _cache_file_of_this_run(folder: Path) -> Path:
    return max(folder.glob("rules-*.pickle"), key=lambda p: p.stat().st_mtime)


def test_a_cache_in_use_is_kept_by_pruning(report, rules_copy):
    """A cache read (not rewritten) by a run counts as used: its age starts again."""
    reference = report(rules_copy, "--no-cache")
    assert report(rules_copy) == reference
    rules_cache, kb_cache = _cache_file("rules"), _cache_file("knowledge")
    for path in (rules_cache, kb_cache):
        _age(path, _cache.MAX_AGE_DAYS - 1)
    assert report(rules_copy) == reference          # read from both caches
    for path in (rules_cache, kb_cache):
        assert time.time() - path.stat().st_mtime < 3600


def test_every_entry_the_loader_writes_passes_the_shape_check(corpus_rules):
    """Guard for the shape check itself: if ``rules.pack_result`` changes, ``loader._entry_ok`` must follow
    (else every cached entry would be parsed again on every run, silently slow)."""
    from logsource_checker import loader, rules

    result = loader.load_rules_fast([str(corpus_rules)], use_cache=False)
    by_file: dict[str, rules.LoadResult] = {}
    for rule in result.rules:
        by_file.setdefault(rule.path, rules.LoadResult()).rules.append(rule)
    for error in result.errors:
        by_file.setdefault(error.path, rules.LoadResult()).errors.append(error)
    for other in result.others:
        by_file.setdefault(other.path, rules.LoadResult()).others.append(other)
    assert len(by_file) > 3000
    assert all(loader._entry_ok(rules.pack_result(part)) for part in by_file.values())


# --------------------------------------------------------------------------- the seal (skips the shape check)

def _seal_of(path: Path) -> bytes:
    data = path.read_bytes()
    return data[len(data) - len(_cache._SEAL) - _cache._DIGEST_SIZE:]


def test_a_sealed_rule_cache_is_used_without_the_entry_check(report, rules_copy, monkeypatch):
    from logsource_checker import loader

    reference = report(rules_copy, "--no-cache")
    assert report(rules_copy) == reference                     # cold: writes the cache, sealed
    path = _cache_file("rules")
    assert _cache.read_sealed_pickle(str(path))[1]
    checked = []
    monkeypatch.setattr(loader, "_entry_ok", lambda packed: checked.append(packed) or True)
    assert report(rules_copy) == reference
    assert checked == []                                       # the seal vouches for every entry


@pytest.mark.parametrize("damage", ["title is a number", "selections is text", "file count is text"])
def test_a_damaged_entry_behind_a_stale_seal_is_ignored_and_rebuilt(report, rules_copy, damage):
    """The seal no longer matches once the bytes change: the entries are shape-checked as without one."""
    reference = report(rules_copy, "--no-cache")
    report(rules_copy)
    path = _cache_file("rules")
    seal = _seal_of(path)
    data = pickle.loads(path.read_bytes())
    victim = next(p for p, (_key, packed) in sorted(data["entries"].items()) if packed[0])
    good = data["entries"][victim]
    data["entries"][victim] = (good[0], RULE_DAMAGE[damage](good[1]))
    path.write_bytes(pickle.dumps(data) + seal)                # the old seal after new bytes
    assert not _cache.read_sealed_pickle(str(path))[1]
    assert report(rules_copy) == reference
    rebuilt, sealed = _cache.read_sealed_pickle(str(path))
    assert rebuilt["entries"][victim] == good and sealed       # rebuilt, and sealed again


def test_an_unsealed_knowledge_cache_is_shape_checked(report, rules_copy, monkeypatch):
    reference = report(rules_copy)
    path = _cache_file("knowledge")
    data, sealed = _cache.read_sealed_pickle(str(path))
    assert sealed
    calls = []
    real = knowledge.conforms
    monkeypatch.setattr(knowledge, "conforms", lambda *a: calls.append(a) or real(*a))
    assert report(rules_copy) == reference
    assert calls == []                                         # sealed: not checked
    _rewrite(path, data)                                       # the same object, no seal
    assert report(rules_copy) == reference
    assert len(calls) == 1                                     # unsealed: checked
