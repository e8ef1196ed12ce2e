"""The direct ustar header (layer/tar_writer.py) is byte for byte what tarfile's PAX format
writes for every entry that needs no pax record, and steps aside for the others."""

from __future__ import annotations

import tarfile

import pytest
from hypothesis import given, settings, strategies as st

from builder.layer.tar_writer import new_tarinfo, ustar_header

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
