"""`make image`: the OCI image runs pyrollouts as a non-root user with the Dockerfile's config and labels."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from rollouts import __version__
from tests.fixtures.image import UnpackedImage, cached_image_archive, require_image_tools, run_in_image, unpack
from tests.fixtures.tools import REPO

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(1200)]

UID = "10001"
LABELS = {
    "org.opencontainers.image.title": "pyrollouts",
    "org.opencontainers.image.version": __version__,
    "org.opencontainers.image.source": "https://github.com/pyrollouts/pyrollouts",
    "org.opencontainers.image.licenses": "Apache-2.0",
}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnpackedImage]:
    require_image_tools()
    yield unpack(cached_image_archive(), tmp_path_factory.mktemp("image"))


def test_config_runs_the_controller_as_a_non_root_user(image: UnpackedImage) -> None:
    settings = image.config["config"]
    assert settings["User"] == f"{UID}:{UID}"
    assert settings["Entrypoint"] == ["pyrollouts", "controller"]
    assert not settings.get("Cmd")
    assert image.config["os"] == "linux"
    assert image.config["architecture"] == "amd64"
    assert LABELS.items() <= settings["Labels"].items()
    assert LABELS.items() <= image.manifest["annotations"].items()


def test_version_runs_inside_the_image(image: UnpackedImage) -> None:
    result = run_in_image(image, ["pyrollouts", "--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"pyrollouts {__version__}"


def test_entrypoint_is_the_controller(image: UnpackedImage) -> None:
    entrypoint = image.config["config"]["Entrypoint"]
    result = run_in_image(image, [*entrypoint, "--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: pyrollouts controller")
    assert "--kubeconfig" in result.stdout


def test_the_wheel_carries_the_crds(image: UnpackedImage) -> None:
    """The CRD schemas (package data) load from the installed wheel, not from a source tree."""
    script = (
        "import rollouts.schema as s; "
        "print(s.CRDS_DIR); print(sorted(c['spec']['names']['kind'] for c in s.load_crds()))"
    )
    result = run_in_image(image, ["python3", "-c", script])
    assert result.returncode == 0, result.stderr
    where, kinds = result.stdout.splitlines()
    assert where.startswith("/opt/pyrollouts/lib/python3.11/site-packages/rollouts/crds")
    assert kinds == "['AnalysisRun', 'AnalysisTemplate', 'ClusterAnalysisTemplate', 'Experiment', 'Rollout']"


def test_the_user_owns_nothing_but_its_home(image: UnpackedImage) -> None:
    """The installed program is root's: the controller's user cannot rewrite it."""
    result = run_in_image(image, ["sh", "-c", "touch /opt/pyrollouts/bin/pyrollouts"])
    assert result.returncode != 0
    assert "Permission denied" in result.stderr
    assert run_in_image(image, ["id", "-u"]).stdout.strip() == UID


def test_the_dockerfile_declares_the_same_user_entrypoint_and_labels() -> None:
    """The Dockerfile (not built here: no Docker) and `make image` give users one image config."""
    dockerfile = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]
    assert re.search(rf"^USER {UID}:{UID}$", runtime, re.MULTILINE)
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", runtime, re.MULTILINE)
    assert json.loads(entrypoint) == ["pyrollouts", "controller"]
    (labels,) = re.findall(r"^LABEL (.+)$", runtime, re.MULTILINE)
    declared = dict(re.findall(r'(\S+)="([^"]*)"', labels))
    expected = {**LABELS, "org.opencontainers.image.version": "${VERSION}"}
    assert expected.items() <= declared.items()
    assert re.search(rf"^ARG VERSION={re.escape(__version__)}$", runtime, re.MULTILINE)
