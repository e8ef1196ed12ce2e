"""The third-party data in ../shared/fixtures that tests may use (and the repository must not
hold), and the ``shared_fixture`` marker that deselects such tests when ../shared is absent
outside CI (conftest.py)."""

from __future__ import annotations

import json
import tarfile

import pytest
from conftest import shared_fixture


@pytest.mark.shared_fixture
def test_dive_test_image_is_a_docker_archive():
    """dive's own analysis test image: a `docker save` archive of 14 layers (its README)."""
    path = shared_fixture("dive/test-docker-image.tar")
    assert tarfile.is_tarfile(path), f"{path} is not a tar"
    with tarfile.open(path) as tar:
        [image] = json.load(tar.extractfile("manifest.json"))
    assert len(image["Layers"]) == 14
