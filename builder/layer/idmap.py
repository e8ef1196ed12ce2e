"""Id mappings of a user namespace: which container id is which host id.

A rootless build runs in a user namespace where container id 0 is the user who started pybuild
and container ids 1…N are the user's subordinate ids from /etc/subuid and /etc/subgid, in the
order the files list them (podman and buildah map them the same way).  Without subordinate ids
the namespace maps one id only: container 0 is the user, and no other id exists in it.

Pure: parsing and arithmetic.  ``userns.py`` enters the namespace with these values.
"""

from __future__ import annotations

from dataclasses import dataclass

#: /proc/self/uid_map of the initial user namespace: every id is itself.
IDENTITY_COUNT = 4294967295


@dataclass(frozen=True)
class IdRange:
    """``count`` consecutive ids: container ``container`` + i is host ``host`` + i."""

    container: int
    host: int
    count: int


@dataclass(frozen=True)
class IdMap:
    """The ranges of one kind of id (uids or gids), as /proc/PID/uid_map lists them."""

    ranges: tuple[IdRange, ...]

    def to_host(self, container_id: int) -> int | None:
        """The host id of ``container_id``; None if the namespace does not map it."""
        for r in self.ranges:
            if r.container <= container_id < r.container + r.count:
                return r.host + container_id - r.container
        return None

    def to_container(self, host_id: int) -> int | None:
        """The container id of ``host_id``; None if it is not mapped (it shows as 65534)."""
        for r in self.ranges:
            if r.host <= host_id < r.host + r.count:
                return r.container + host_id - r.host
        return None

    @property
    def identity(self) -> bool:
        """True for the initial namespace's map (every id is itself)."""
        return self.ranges == (IdRange(0, 0, IDENTITY_COUNT),)

    @property
    def size(self) -> int:
        return sum(r.count for r in self.ranges)

    def args(self) -> list[str]:
        """The triples newuidmap/newgidmap take after the pid: ``container host count``…"""
        return [str(n) for r in self.ranges for n in (r.container, r.host, r.count)]

    def text(self) -> str:
        """What /proc/PID/uid_map (or gid_map) gets written."""
        return "".join(f"{r.container} {r.host} {r.count}\n" for r in self.ranges)

    def describe(self) -> str:
        """``0→1000, 1–65536→100000–165535`` (container → host)."""
        return ", ".join(f"{_span(r.container, r.count)}→{_span(r.host, r.count)}" for r in self.ranges)


@dataclass(frozen=True)
class Mapping:
    """A user namespace's uids and gids.  ``subordinate``: the user's subordinate ids are
    mapped (False: one id only, and ``note`` says why)."""

    uids: IdMap
    gids: IdMap
    subordinate: bool
    note: str = ""

    def describe(self) -> str:
        return f"uids {self.uids.describe()}; gids {self.gids.describe()}"


def _span(start: int, count: int) -> str:
    return str(start) if count == 1 else f"{start}–{start + count - 1}"


def parse_subordinate(text: str, *, user: str, uid: int) -> tuple[tuple[int, int], ...]:
    """The (start, count) ranges /etc/subuid (or /etc/subgid) gives ``user``, in file order.

    A line is ``NAME:START:COUNT`` where NAME is the user's name or its numeric id (shadow's
    newuidmap accepts both); comments, blank lines, other users' lines and malformed lines
    are skipped, as are empty ranges."""
    found: list[tuple[int, int]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 3 or fields[0] not in (user, str(uid)):
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if start >= 0 and count > 0:
            found.append((start, count))
    return tuple(found)


def mapping_for(uid: int, gid: int, subuids: tuple[tuple[int, int], ...],
                subgids: tuple[tuple[int, int], ...]) -> Mapping:
    """Container 0 → the user's own ``uid``/``gid``; container 1… → the subordinate ranges in
    order.  Without ranges of both kinds: the single-id mapping (see ``single``)."""
    if not subuids or not subgids:
        return single(uid, gid, "no subordinate ids in /etc/subuid and /etc/subgid")
    return Mapping(_with_subordinates(uid, subuids), _with_subordinates(gid, subgids), subordinate=True)


def single(uid: int, gid: int, why: str) -> Mapping:
    """Only container 0 exists, and it is the user."""
    return Mapping(IdMap((IdRange(0, uid, 1),)), IdMap((IdRange(0, gid, 1),)), subordinate=False, note=why)


def _with_subordinates(own: int, ranges: tuple[tuple[int, int], ...]) -> IdMap:
    out = [IdRange(0, own, 1)]
    next_id = 1
    for start, count in ranges:
        out.append(IdRange(next_id, start, count))
        next_id += count
    return IdMap(tuple(out))


def parse_proc_map(text: str) -> IdMap:
    """/proc/PID/uid_map (or gid_map) as an IdMap; malformed lines are skipped."""
    ranges = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and all(f.isdigit() for f in fields):
            ranges.append(IdRange(int(fields[0]), int(fields[1]), int(fields[2])))
    return IdMap(tuple(ranges))
