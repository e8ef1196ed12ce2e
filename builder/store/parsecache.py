"""Parsed Buildfiles, remembered in the store by their bytes: a build whose Buildfile did not
change neither imports Lark nor parses (the parse is most of a fully cached build's time).

The key is the sha256 of the Buildfile's bytes, the path it is read from (positions and
messages name it) and the parser's own files (pybuild's version, and the size and mtime of
every module of builder/buildfile and of the grammar): editing the parser invalidates every
entry.  An entry is the pickled ``Buildfile`` (frozen dataclasses), under
``cache/.parsed/<key>``, read only when owned by the user and writable by no one else.  A Buildfile
that does not parse is not remembered (its error is raised again, by the parser).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
from pathlib import Path

from builder import __version__
from builder.buildfile import instructions as ins
from builder.errors import UsageError
from builder.store.store import Store


def load_buildfile(store: Store, path: Path) -> ins.Buildfile:
    """The parse of the Buildfile at ``path``: remembered, or parsed now and remembered."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"Buildfile not found: {path}") from None
    except OSError as e:
        raise UsageError(f"cannot read Buildfile {path}: {e.strerror}") from None
    key = hashlib.sha256(b"\0".join([data, os.fsencode(str(path)), _parser_fingerprint()])).hexdigest()
    entry = store.parsed_path(key)
    parsed = _remembered(entry)
    if parsed is not None:
        return parsed
    # start-up: the parser (and Lark) only when this Buildfile was not parsed before
    from builder.buildfile.parse import parse_file
    parsed = parse_file(path)
    entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    store.atomic_write(entry, pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL), durable=False)
    return parsed


def _remembered(entry: Path) -> ins.Buildfile | None:
    """The entry's Buildfile, if it is there and only this user could have written it (an
    unpickled file runs code: one another user could write is not read)."""
    try:
        with open(entry, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            parsed = pickle.loads(f.read())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        return None
    return parsed if isinstance(parsed, ins.Buildfile) else None


def _parser_fingerprint() -> bytes:
    package = Path(ins.__file__).parent
    files = sorted(package.glob("*.py"))
    spec = importlib.util.find_spec("builder.grammar")
    if spec is not None and spec.submodule_search_locations:
        files.append(Path(next(iter(spec.submodule_search_locations))) / "buildfile.lark")
    else:
        files.append(package.parents[1] / "grammar" / "buildfile.lark")
    parts = [__version__]
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            continue
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts).encode()
