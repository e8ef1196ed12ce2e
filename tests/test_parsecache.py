"""The parse cache (store/parsecache.py): a remembered parse equals a fresh one, any change to
the Buildfile's bytes or path misses, a parse error is never remembered, and an entry someone
else could have written is not read (unpickling runs code)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from buildfixtures import pybuild

from builder.buildfile import parse as parse_module
from builder.errors import BuildfileError
from builder.store import parsecache
from builder.store.store import Store

BUILDFILE = "FROM scratch\nENV A=1\nCOPY a /a\nRUN echo $A\n"


@pytest.fixture
def counted(monkeypatch):
    """parse_file, counting its calls."""
    calls: list[Path] = []
    real = parse_module.parse_file

    def parse_file(path):
        calls.append(path)
        return real(path)
    monkeypatch.setattr(parse_module, "parse_file", parse_file)
    return calls


def entries(store: Store) -> list[Path]:
    return sorted(p for p in (store.root / "cache" / ".parsed").glob("*"))


def test_second_load_is_remembered_and_equal(tmp_path, counted):
    store = Store(tmp_path / "store")
    bf = tmp_path / "Buildfile"
    bf.write_text(BUILDFILE)
    first = parsecache.load_buildfile(store, bf)
    second = parsecache.load_buildfile(store, bf)
    assert first == second == parse_module.parse_file(bf)
    assert len(counted) == 2                     # the first load, and the comparison above
    assert len(entries(store)) == 1


@pytest.mark.parametrize("change", ["bytes", "path"])
def test_a_change_misses(tmp_path, counted, change):
    store = Store(tmp_path / "store")
    bf = tmp_path / "Buildfile"
    bf.write_text(BUILDFILE)
    parsecache.load_buildfile(store, bf)
    if change == "bytes":
        bf.write_text(BUILDFILE.replace("A=1", "A=2"))
    else:
        bf = tmp_path / "Other"
        bf.write_text(BUILDFILE)
    parsed = parsecache.load_buildfile(store, bf)
    assert len(counted) == 2
    assert parsed.path == str(bf) and parsed.instructions[1].pos.file == str(bf)
    assert len(entries(store)) == 2


def test_parse_error_is_not_remembered(tmp_path, counted):
    store = Store(tmp_path / "store")
    bf = tmp_path / "Buildfile"
    bf.write_text("FROM scratch\nFROBNICATE x\n")
    for _ in range(2):
        with pytest.raises(BuildfileError):
            parsecache.load_buildfile(store, bf)
    assert len(counted) == 2
    assert entries(store) == []


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_entry_writable_by_others_is_not_read(tmp_path, counted, mode):
    store = Store(tmp_path / "store")
    bf = tmp_path / "Buildfile"
    bf.write_text(BUILDFILE)
    parsecache.load_buildfile(store, bf)
    [entry] = entries(store)
    os.chmod(entry, mode)
    parsecache.load_buildfile(store, bf)
    assert len(counted) == 2
    assert oct(entry.stat().st_mode & 0o777) == oct(0o600)    # rewritten by this user


def test_corrupt_entry_is_parsed_again(tmp_path, counted):
    store = Store(tmp_path / "store")
    bf = tmp_path / "Buildfile"
    bf.write_text(BUILDFILE)
    parsecache.load_buildfile(store, bf)
    [entry] = entries(store)
    entry.write_bytes(b"not a pickle")
    os.chmod(entry, 0o600)
    assert parsecache.load_buildfile(store, bf) == parse_module.parse_file(bf)
    assert len(counted) == 3


def test_prune_all_forgets_parses(tmp_path):
    store = Store(tmp_path / "store")
    bf = tmp_path / "Buildfile"
    bf.write_text(BUILDFILE)
    parsecache.load_buildfile(store, bf)
    pybuild("prune", root=store.root)
    assert len(entries(store)) == 1
    pybuild("prune", "--all", root=store.root)
    assert entries(store) == []
