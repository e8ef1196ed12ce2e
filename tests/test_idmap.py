"""Id mappings (builder/layer/idmap.py): /etc/subuid lines, the mapping a user gets, and the
arithmetic both ways.  Pure: no user, no namespace."""

from __future__ import annotations

import pytest

from builder.layer.idmap import IdMap, IdRange, mapping_for, parse_proc_map, parse_subordinate

SUBUID = """\
# comment lines and blank lines are skipped

alice:100000:65536
bob:165536:65536
1003:231072:1000
alice:300000:10
carol:400000:0
dave:notanumber:5
eve:1:2:3
"""


@pytest.mark.parametrize("user, uid, want", [
    pytest.param("alice", 1001, ((100000, 65536), (300000, 10)), id="two-ranges-in-file-order"),
    pytest.param("bob", 1002, ((165536, 65536),), id="by-name"),
    # shadow's newuidmap takes a line naming the user by its numeric id too
    pytest.param("frank", 1003, ((231072, 1000),), id="by-numeric-id"),
    pytest.param("carol", 1004, (), id="empty-range-skipped"),
    pytest.param("dave", 1005, (), id="malformed-start-skipped"),
    pytest.param("eve", 1006, (), id="four-fields-skipped"),
    pytest.param("nobody", 65534, (), id="not-listed"),
])
def test_parse_subordinate(user, uid, want):
    assert parse_subordinate(SUBUID, user=user, uid=uid) == want


def test_mapping_for_maps_root_to_the_user_then_the_ranges_in_order():
    m = mapping_for(1001, 1001, ((100000, 65536), (300000, 10)), ((200000, 65536),))
    assert m.subordinate and m.note == ""
    assert m.uids.ranges == (IdRange(0, 1001, 1), IdRange(1, 100000, 65536), IdRange(65537, 300000, 10))
    assert m.gids.ranges == (IdRange(0, 1001, 1), IdRange(1, 200000, 65536))
    assert m.uids.args() == ["0", "1001", "1", "1", "100000", "65536", "65537", "300000", "10"]
    assert m.uids.text() == "0 1001 1\n1 100000 65536\n65537 300000 10\n"
    assert m.uids.size == 65547
    assert m.describe() == "uids 0→1001, 1–65536→100000–165535, 65537–65546→300000–300009; gids 0→1001, " \
                           "1–65536→200000–265535"


@pytest.mark.parametrize("subuids, subgids", [
    pytest.param((), ((200000, 65536),), id="no-subuids"),
    pytest.param(((100000, 65536),), (), id="no-subgids"),
])
def test_without_both_kinds_of_range_one_id_only(subuids, subgids):
    m = mapping_for(1001, 1002, subuids, subgids)
    assert not m.subordinate
    assert m.note == "no subordinate ids in /etc/subuid and /etc/subgid"
    assert (m.uids.ranges, m.gids.ranges) == ((IdRange(0, 1001, 1),), (IdRange(0, 1002, 1),))
    assert m.describe() == "uids 0→1001; gids 0→1002"


MAP = IdMap((IdRange(0, 1001, 1), IdRange(1, 100000, 65536)))


@pytest.mark.parametrize("container, host", [
    pytest.param(0, 1001, id="root-is-the-user"),
    pytest.param(1, 100000, id="first-subordinate"),
    pytest.param(1000, 100999, id="n-is-base-plus-n-minus-1"),
    pytest.param(65536, 165535, id="last-subordinate"),
    pytest.param(65537, None, id="past-the-range"),
    pytest.param(3_000_000_000, None, id="far-outside"),
])
def test_to_host_and_back(container, host):
    assert MAP.to_host(container) == host
    if host is not None:
        assert MAP.to_container(host) == container


@pytest.mark.parametrize("host", [
    pytest.param(0, id="host-root-unmapped"),
    pytest.param(1000, id="another-user"),
    pytest.param(99999, id="just-below-the-range"),
    pytest.param(165536, id="just-above-the-range"),
])
def test_unmapped_host_ids(host):
    assert MAP.to_container(host) is None


@pytest.mark.parametrize("text, identity, ranges", [
    pytest.param("         0          0 4294967295\n", True, (IdRange(0, 0, 4294967295),), id="initial-namespace"),
    pytest.param("         0       1001          1\n         1     100000      65536\n", False,
                 (IdRange(0, 1001, 1), IdRange(1, 100000, 65536)), id="rootless"),
    pytest.param("", False, (), id="not-yet-written"),
    pytest.param("0 0\nx y z\n", False, (), id="malformed"),
])
def test_parse_proc_map(text, identity, ranges):
    m = parse_proc_map(text)
    assert m.ranges == ranges
    assert m.identity == identity
