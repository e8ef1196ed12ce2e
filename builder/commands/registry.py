"""Registries: `pull`, `push`, `login`."""

from __future__ import annotations

import argparse
import sys

from builder.commands import store_of
from builder.oci.digest import short_id


def cmd_pull(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.build.log import BuildLog
    from builder.registry.pull import pull
    result = pull(store_of(args), args.reference, insecure=args.insecure, bar=BuildLog().bar)
    for d in result.present:
        print(f"{short_id(d)}: already in the store")
    for d in result.fetched:
        print(f"{short_id(d)}: pulled")
    print(f"Digest: {result.manifest_digest}")
    print(result.tag or result.image_id)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.build.log import BuildLog
    from builder.registry.push import push
    result = push(store_of(args), args.image, args.destination, fmt=args.format, insecure=args.insecure,
                  bar=BuildLog().bar)
    for verb, digests in (("pushed", result.uploaded), ("already exists", result.existed),
                          ("mounted", result.mounted)):
        for d in digests:
            print(f"{short_id(d)}: {verb}")
    print(f"{result.ref.full}: digest: {result.manifest_digest}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.errors import UsageError
    from builder.registry.auth import Credentials, save_credentials
    from builder.registry.client import RegistryClient
    from builder.registry.reference import RegistryRef, registry_host
    if not args.password_stdin:
        raise UsageError("login: give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("login: no password on standard input")
    store = store_of(args)
    host = registry_host(args.registry)
    creds = Credentials(args.username, password, "the command line")
    client = RegistryClient(RegistryRef(host, "library/x", "latest"), credentials=creds,
                            insecure=args.insecure)
    client.ping()                       # wrong credentials fail here, and nothing is stored
    path = save_credentials(store, host, args.username, password)
    print(f"Login Succeeded (credentials stored in {path})")
    return 0


def register(sub, common) -> None:
    p = sub.add_parser("pull", parents=[common], help="pull an image from a registry into the store")
    p.add_argument("reference", help="[host[:port]/]name[:tag][@sha256:…]; docker.io by default")
    p.add_argument("--insecure", action="store_true", help="plain http (always for localhost)")
    p.set_defaults(func=cmd_pull)

    s = sub.add_parser("push", parents=[common], help="push an image of the store to a registry")
    s.add_argument("image", help="a tag or image ID in the store")
    s.add_argument("destination", nargs="?", help="where to push (default: IMAGE as a reference)")
    s.add_argument("--format", choices=("oci", "docker"), default="oci",
                   help="manifest media types: OCI (default) or Docker schema2")
    s.add_argument("--insecure", action="store_true", help="plain http (always for localhost)")
    s.set_defaults(func=cmd_push)

    lg = sub.add_parser("login", parents=[common], help="store credentials for a registry")
    lg.add_argument("registry", help="host[:port] (docker.io for Docker Hub)")
    lg.add_argument("-u", "--username", required=True)
    lg.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    lg.add_argument("--insecure", action="store_true", help="plain http (always for localhost)")
    lg.set_defaults(func=cmd_login)
