"""`pybuild info [--json]`: how pybuild builds on this machine — the store, the snapshotter,
the user and its id mapping, the kernel features found, and how each RUN is confined.

Each section comes from one small function returning plain data (``SECTIONS``); the text
form renders that data, ``--json`` prints it as is.  A section that changes with a mode of
pybuild (the snapshotter, the user mapping) is one function to edit."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable

Section = dict[str, object]


def store_section(args: argparse.Namespace) -> Section:
    # start-up: only the store's default location is needed, not the store
    from builder.store.store import default_root
    root = os.path.abspath(args.root) if args.root else str(default_root())
    return {"root": root, "exists": os.path.isdir(root)}


_DETAIL = {"overlay": "overlayfs union of the layers; the upper dir is the step's changes",
           "copy": "one working root per build; a step's changes found by comparing it with the state before"}


def snapshotter_section(args: argparse.Namespace) -> Section:
    """How a step's root is made and its changes found: what a build here would choose
    (``PYBUILD_SNAPSHOTTER``, else overlay if the store's filesystem mounts one, as probed)."""
    # start-up: the snapshotter and its probe are loaded only here and by a running step
    from builder.build.snapshotter import snapshotter_in_use
    from builder.commands import store_of
    from builder.store.store import default_root
    if os.path.isdir(args.root or default_root()):
        store = store_of(args)              # probed where builds mount (an ordinary user: in its namespace)
    else:
        store = None                        # info creates no store
        if os.geteuid() != 0:
            # start-up: only an ordinary user's commands enter a user namespace
            from builder.layer import userns
            userns.enter()
    in_use = snapshotter_in_use(store)
    name = in_use.split(" ", 1)[0]
    return {"name": name, "why": in_use[len(name):].strip(" ()"), "detail": _DETAIL.get(name, "")}


def user_section(args: argparse.Namespace) -> Section:
    """Who builds, and how ids inside a RUN map to the host's (after the snapshotter's section
    opened the store: an ordinary user's pybuild is then in its user namespace)."""
    # start-up: the user namespace code is loaded only here and for an ordinary user
    from builder.layer import userns
    return {"uid": os.getuid(), "root": os.getuid() == 0, "user_namespace": userns.in_user_namespace(),
            "mapping": userns.user_mapping()}


def kernel_section(args: argparse.Namespace) -> Section:
    # start-up: the probes are loaded only here
    from builder.layer import kernel
    return {"release": kernel.release(),
            "features": [{"name": f.name, "available": f.available, "detail": f.detail}
                         for f in kernel.features()]}


def confinement_section(args: argparse.Namespace) -> Section:
    # start-up: the confinement (and libseccomp) is loaded only here and by a running step
    from builder.layer import confine
    return confine.describe()


SECTIONS: tuple[tuple[str, Callable[[argparse.Namespace], Section]], ...] = (
    ("store", store_section), ("snapshotter", snapshotter_section), ("user", user_section),
    ("kernel", kernel_section), ("confinement", confinement_section),
)


def collect(args: argparse.Namespace) -> dict[str, Section]:
    return {name: fn(args) for name, fn in SECTIONS}


def render(info: dict[str, Section]) -> str:
    """The text form: one line per fact, the kernel's features and the confinement indented."""
    store, snap, user = info["store"], info["snapshotter"], info["user"]
    kern, conf = info["kernel"], info["confinement"]
    lines = [f"Store:        {store['root']}{'' if store['exists'] else ' (not created yet)'}",
             f"Snapshotter:  {snap['name']}{' (' + str(snap['why']) + ')' if snap['why'] else ''}: {snap['detail']}",
             f"User:         uid {user['uid']}: {user['mapping']}",
             f"Kernel:       {kern['release']}"]
    for f in _list(kern["features"]):
        lines.append(f"  {f['name'] + ':':<30}{'yes' if f['available'] else 'no '}  {f['detail']}")
    lines.append("Confinement of RUN (docker's default container):")
    caps = _dict(conf["capabilities"])
    seccomp = _dict(conf["seccomp"])
    network = _dict(conf["network"])
    rows = [
        ("namespaces", ", ".join(_list(conf["namespaces"]))),
        ("network", f"--network=default: {network['default']}; --network=none: {network['none']}"),
        ("root", f"{conf['root']}; nodev on {conf['nodev']}"),
        ("capabilities", f"{len(_list(caps['none']))} with --network=none: {' '.join(_list(caps['none']))}"),
        ("", f"{len(_list(caps['default']))} on the host's network (without NET_RAW)"),
        ("seccomp", f"libseccomp {seccomp['libseccomp']}: {seccomp['profile']} profile, {seccomp['rules']} rules "
                    f"({seccomp['instructions']} BPF instructions); EPERM otherwise, ENOSYS past syscall "
                    f"{seccomp['enosys_above']}" if "error" not in seccomp else f"UNAVAILABLE: {seccomp['error']}"),
        ("no_new_privs", "on" if conf["no_new_privs"] else "off (as docker)"),
        ("masked", " ".join(_list(conf["proc_masked"])) or "(none of the paths exists here)"),
        ("read-only", " ".join(_list(conf["proc_read_only"])) + " /sys"),
        ("devices", " ".join(_list(conf["devices"])) + ", pts, shm, mqueue"),
    ]
    lines += [f"  {name + ':' if name else '':<15}{text}" for name, text in rows]
    return "\n".join(lines) + "\n"


def _list(value: object) -> list:
    assert isinstance(value, list)
    return value


def _dict(value: object) -> dict:
    assert isinstance(value, dict)
    return value


def cmd_info(args: argparse.Namespace) -> int:
    info = collect(args)
    print(json.dumps(info, indent=2) if args.json else render(info), end="\n" if args.json else "")
    return 0


def register(sub, common) -> None:
    p = sub.add_parser("info", parents=[common],
                       help="how pybuild builds here: store, snapshotter, user, kernel features, RUN confinement")
    p.add_argument("--json", action="store_true", help="print it as one JSON object")
    p.set_defaults(func=cmd_info)
