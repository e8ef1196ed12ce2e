"""builder/oci/reference.py: docker's name normalisation, shared by registry and archives."""

from __future__ import annotations

import pytest

from builder.oci.reference import familiar_name, official_path, split_domain


@pytest.mark.parametrize("name, domain, path, familiar", [
    pytest.param("debian", "docker.io", "library/debian", "debian", id="official"),
    pytest.param("me/app", "docker.io", "me/app", "me/app", id="user-repo"),
    pytest.param("docker.io/library/debian", "docker.io", "library/debian", "debian", id="full-official"),
    # the old name of Docker Hub reads as docker.io
    pytest.param("index.docker.io/me/app", "docker.io", "me/app", "me/app", id="legacy-domain"),
    pytest.param("127.0.0.1:5000/team/base", "127.0.0.1:5000", "team/base", "127.0.0.1:5000/team/base",
                 id="host-with-port"),
    pytest.param("localhost/app", "localhost", "app", "localhost/app", id="localhost"),
    pytest.param("quay.io/x/y", "quay.io", "x/y", "quay.io/x/y", id="dotted-host"),
    # an upper-case first component cannot be a repository name: it is a host
    pytest.param("Registry/app", "Registry", "app", "Registry/app", id="uppercase-host"),
    # no library/ outside docker.io
    pytest.param("example.com/app", "example.com", "app", "example.com/app", id="one-component-elsewhere"),
])
def test_normalisation(name: str, domain: str, path: str, familiar: str) -> None:
    got_domain, raw_path = split_domain(name)
    got_path = official_path(got_domain, raw_path)
    assert (got_domain, got_path) == (domain, path)
    assert familiar_name(got_domain, got_path) == familiar
