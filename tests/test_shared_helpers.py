"""The helpers the rule loader, the guide-data loader and the command share: the pickle cache plumbing
(``_cache``), the collector pause (``_gcpause``), the one fast YAML path (``rules.load_mapping_like_pyyaml``)
and the progress reporting of the rule loader."""
from __future__ import annotations

import gc
import os
import pickle
from pathlib import Path

import pytest

from logsource_checker import _cache, knowledge, loader, rules
from logsource_checker.rules import yaml_read
from logsource_checker._gcpause import paused_gc

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RULES = ROOT / "samples" / "rules"


# --------------------------------------------------------------------------- collector pause

def test_paused_gc_keeps_a_host_programs_frozen_objects_frozen():
    """A host program that froze its objects (gc.freeze()) keeps them frozen across a check: the
    freeze/unfreeze splice would move them back into the collected generations."""
    assert gc.isenabled()
    keep = [[i] for i in range(1000)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with paused_gc():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() == frozen
        del made
    finally:
        gc.unfreeze()
    del keep
    assert gc.get_freeze_count() == 0


def test_check_as_a_library_keeps_a_host_programs_frozen_objects_frozen():
    from logsource_checker.engine import CheckOptions, check

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        result = check(CheckOptions(paths=[str(SAMPLE_RULES)], use_cache=False))
        assert result.loaded.rules
        # the host's frozen objects stay frozen (an unfreeze would empty the permanent generation) and none of
        # the check's own are added; frozen objects the check lets go (a cache it replaces) may leave, so the
        # count can fall but never reach 0 or grow
        assert gc.isenabled() and 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_paused_gc_without_a_host_freeze_leaves_nothing_frozen():
    with paused_gc():
        made = [[i] for i in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    del made


# --------------------------------------------------------------------------- pickle caches

def test_cache_dir_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _cache.cache_dir() == str(tmp_path / "logsource-checker")
    assert loader.cache_dir() == _cache.cache_dir()
    assert os.path.dirname(knowledge._kb_cache_path(ROOT)) == _cache.cache_dir()


def test_write_then_read_trusted_pickle(tmp_path):
    path = str(tmp_path / "sub" / "rules-x.pickle")
    _cache.write_pickle_atomically(path, {"a": (1, 2)})
    assert _cache.read_trusted_pickle(path) == {"a": (1, 2)}
    assert (os.stat(tmp_path / "sub").st_mode & 0o777) == 0o700
    assert (os.stat(path).st_mode & 0o077) == 0
    assert os.listdir(tmp_path / "sub") == ["rules-x.pickle"]


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX ownership and modes")
def test_untrusted_pickles_are_not_read(tmp_path):
    good = tmp_path / "good.pickle"
    good.write_bytes(pickle.dumps([1]))
    good.chmod(0o600)
    assert _cache.read_trusted_pickle(str(good)) == [1]
    for mode in (0o620, 0o602):
        good.chmod(mode)
        assert _cache.read_trusted_pickle(str(good)) is None
    good.chmod(0o600)
    link = tmp_path / "link.pickle"
    link.symlink_to(good)
    assert _cache.read_trusted_pickle(str(link)) is None
    assert _cache.read_trusted_pickle(str(tmp_path / "missing.pickle")) is None
    garbage = tmp_path / "garbage.pickle"
    garbage.write_bytes(b"\x80\x05not a pickle")
    assert _cache.read_trusted_pickle(str(garbage)) is None


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    folder = tmp_path / "cache"
    path = str(folder / "rules-x.pickle")
    _cache.write_pickle_atomically(path, {"f": lambda: None})   # cannot be pickled
    assert os.listdir(folder) == []
    (folder / "knowledge-y.pickle").mkdir()                     # os.replace onto a folder fails
    _cache.write_pickle_atomically(str(folder / "knowledge-y.pickle"), [1])
    assert os.listdir(folder) == ["knowledge-y.pickle"]
    # and the rule loader's writer is this one
    loader._write_cache(path, {"p": ((1, 2, 3, 4), ("not", lambda: None))})
    assert os.listdir(folder) == ["knowledge-y.pickle"]


def test_a_cache_of_another_parser_or_rules_module_is_not_used(tmp_path, monkeypatch):
    path = str(tmp_path / "rules-x.pickle")
    entries = {"a.yml": ((1, 2, 3, 4), ((), (), (), 1))}
    loader._write_cache(path, entries)
    assert loader._read_cache(path) == entries
    fingerprint = rules.parser_fingerprint()
    package = os.path.dirname(rules.__file__)
    own = sorted(name for name in os.listdir(package) if name.endswith(".py"))
    assert [entry[0] for entry in fingerprint] == [*own, "yaml", "yaml_rs"]
    assert {"extract.py", "yaml_read.py", "cache.py", "model.py", "walk.py"} <= set(own)
    assert all(entry[1] == os.path.join(package, entry[0]) and len(entry) == 4 for entry in fingerprint[:len(own)])
    monkeypatch.setattr(yaml_read, "_FINGERPRINT", fingerprint[:-1] + (("yaml_rs", "elsewhere", 1, 2),))
    assert loader._read_cache(path) == {}
    edited = tuple((e[0], e[1], e[2] + 1, e[3]) if e[0] == "extract.py" else e for e in fingerprint)
    monkeypatch.setattr(yaml_read, "_FINGERPRINT", edited)
    assert loader._read_cache(path) == {}    # an edited extraction module: the cached parses are not used
    base = knowledge.data_root()
    key = knowledge._kb_cache_key(base, knowledge._data_files(base))
    assert key is not None and rules.parser_fingerprint() in key
    assert any(entry[0] == yaml_read.__file__ for entry in key[-1])


# --------------------------------------------------------------------------- one fast YAML path

def test_load_mapping_like_pyyaml_checks_what_it_is_asked_to():
    text = "title: x\nother: yes\n"   # 'yes' is True for PyYAML, a string for yaml_rs
    assert rules.load_mapping_like_pyyaml(text, check_all_keys=False) == {"title": "x", "other": "yes"}
    assert rules.load_mapping_like_pyyaml(text) is None
    assert knowledge._read_yaml_fast(text) is None
    assert rules.load_mapping_like_pyyaml("a: b\nc: [1, 'x']\n") == {"a": "b", "c": [1, "x"]}
    assert rules.parse_documents(text) == [{"title": "x", "other": "yes"}]


def test_guide_data_fallback_names_the_file_in_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: [unclosed\n", encoding="utf-8")
    with pytest.raises(knowledge._yaml().YAMLError) as info:
        knowledge._read_yaml(bad)
    assert str(bad) in str(info.value)
    odd = tmp_path / "odd.yaml"
    odd.write_text("a: yes\nb: 0123\n", encoding="utf-8")
    assert knowledge._read_yaml(odd) == {"a": True, "b": 83}


# --------------------------------------------------------------------------- progress

class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def start(self, total: int) -> None:
        self.calls.append(("start", total))

    def advance(self, n: int = 1) -> None:
        self.calls.append(("advance", n))

    def finish(self) -> None:
        self.calls.append(("finish", 0))


def _check_progress(calls: list[tuple[str, int]], files: int) -> None:
    assert calls[0] == ("start", files) and calls[-1] == ("finish", 0)
    advances = [n for kind, n in calls[1:-1] if kind == "advance"]
    assert all(kind == "advance" for kind, _ in calls[1:-1])
    assert sum(advances) == files and all(n > 0 for n in advances)


def test_the_loader_advances_the_progress_bar(tmp_path):
    recorder = _Recorder()
    result = loader.load_rules_fast([str(SAMPLE_RULES)], use_cache=False, progress=recorder)
    _check_progress(recorder.calls, result.files)


def test_the_loader_advances_the_progress_bar_on_the_split_path(corpus_rules):
    recorder = _Recorder()
    result = loader.load_rules_fast([str(corpus_rules)], use_cache=True, progress=recorder)
    _check_progress(recorder.calls, result.files)
    assert len(recorder.calls) > 3   # advanced while parsing, not only at the end
    recorder = _Recorder()           # warm: nothing to parse
    loader.load_rules_fast([str(corpus_rules)], use_cache=True, progress=recorder)
    assert recorder.calls == [("start", 0), ("finish", 0)]
