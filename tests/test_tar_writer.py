"""The direct ustar header (layer/tar_writer.py) is byte for byte what tarfile's PAX format
writes for every entry that needs no pax record, and steps aside for the others."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from hypothesis import given, settings, strategies as st

from builder.errors import LayerError
from builder.layer.tar_writer import BLOCK, LayerTarWriter, new_tarinfo, ustar_header
from builder.oci.digest import CHUNK

TYPES = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
         tarfile.BLKTYPE, tarfile.FIFOTYPE]
ascii_name = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=100)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(name=ascii_name, typeflag=st.sampled_from(TYPES), mode=st.integers(0, 0o7777),
       uid=st.integers(0, 0o7777777), gid=st.integers(0, 0o7777777), size=st.integers(0, 2**33),
       mtime=st.integers(0, 2**33), link=st.text(alphabet="abc/._-", max_size=100),
       major=st.integers(0, 4095), minor=st.integers(0, 2**20))
def test_same_bytes_as_tarfile(name, typeflag, mode, uid, gid, size, mtime, link, major, minor):
    info = new_tarinfo(name, typeflag=typeflag, mode=mode, uid=uid, gid=gid, mtime=mtime,
                       size=size if typeflag == tarfile.REGTYPE else 0, linkname=link,
                       devmajor=major, devminor=minor)
    ours = ustar_header(info)
    theirs = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if ours is None:                # only where tarfile needs a pax record (here: a size of 8**11)
        assert b"PaxHeader" in theirs[:100]
    else:
        assert ours == theirs


@pytest.mark.parametrize("name, link, uid, size", [
    pytest.param("é", "", 0, 0, id="non-ascii-name"),
    pytest.param("a" * 101, "", 0, 0, id="long-name"),
    pytest.param("a", "b" * 101, 0, 0, id="long-link"),
    pytest.param("a", "", 2**21, 0, id="big-uid"),
    pytest.param("a", "", 0, 8**11, id="big-size"),
])
def test_pax_cases_fall_back(name, link, uid, size):
    info = new_tarinfo(name, typeflag=tarfile.REGTYPE, mode=0o644, uid=uid, gid=0, mtime=0, size=size,
                       linkname=link)
    assert ustar_header(info) is None


@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_file_entry_reads_back_as_written(size):
    """Small files (one write) and big ones (chunks) give the same tar: tarfile reads it back."""
    data = bytes(range(256)) * (size // 256 + 1)
    out = io.BytesIO()
    writer = LayerTarWriter(out)
    writer.add(new_tarinfo("f", typeflag=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, mtime=1, size=size),
               io.BytesIO(data[:size]))
    digest, total = writer.close()
    raw = out.getvalue()
    assert total == len(raw) == BLOCK + -(-size // BLOCK) * BLOCK + 2 * BLOCK
    assert digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = tar.getmember("f")
        assert (member.size, tar.extractfile(member).read()) == (size, data[:size])


@pytest.mark.parametrize("size", [10, CHUNK + 10])
@pytest.mark.parametrize("change, message", [(-1, "shrank"), (+1, "grew")])
def test_file_that_changed_size_is_an_error(size, change, message):
    writer = LayerTarWriter(io.BytesIO())
    info = new_tarinfo("f", typeflag=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, mtime=1, size=size)
    with pytest.raises(LayerError, match=message):
        writer.add(info, io.BytesIO(b"x" * (size + change)))
