"""Offline validation: the CI config, the compose file, every rendered Kubernetes manifest and the Dockerfile.

Each checker carries its schemas or rules (check-jsonschema vendors GitLab's CI schema and the Compose
specification; kubernetes-validate ships the Kubernetes schemas); nothing is downloaded while the tests run.
Each check is also run on a broken file, so a checker that silently accepts everything cannot pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.files import KUBERNETES_VERSION, OVERLAYS, REPO, rendered, run, tool


def check_jsonschema(schema: str, path: Path | str) -> tuple[int, str]:
    result = run(tool("check-jsonschema"), "--builtin-schema", schema, path)
    return result.returncode, result.stdout + result.stderr


def kubernetes_validate(path: Path | str) -> tuple[int, str]:
    result = run(tool("kubernetes-validate"), "--kubernetes-version", KUBERNETES_VERSION, "--strict", "--quiet", path)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("vendor.gitlab-ci", ".gitlab-ci.yml"),
        ("vendor.compose-spec", "docker-compose.yml"),
    ],
)
def test_file_matches_its_schema(schema: str, path: str) -> None:
    code, output = check_jsonschema(schema, path)
    assert code == 0, output


@pytest.mark.parametrize(
    ("schema", "broken"),
    [
        ("vendor.gitlab-ci", {"test": {"stage": "test", "scrpit": ["true"]}}),
        ("vendor.compose-spec", {"services": {"api": {"image": "herald", "prots": ["8080:8080"]}}}),
    ],
)
def test_schema_check_rejects_a_broken_file(schema: str, broken: dict, tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert check_jsonschema(schema, path)[0] != 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_overlay_matches_kubernetes_schemas(overlay: str, tmp_path: Path) -> None:
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(yaml.safe_dump_all(rendered(overlay)))
    code, output = kubernetes_validate(path)
    assert code == 0, output


def test_secret_template_matches_kubernetes_schemas() -> None:
    code, output = kubernetes_validate(REPO / "deploy/k8s/base/secret.template.yaml")
    assert code == 0, output


def test_kubernetes_validation_rejects_a_broken_manifest(tmp_path: Path) -> None:
    deployment = next(doc for doc in rendered("production") if doc["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(deployment))
    assert kubernetes_validate(path)[0] != 0


def test_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_bad_dockerfile(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("FROM python:latest\nRUN cd /app && pip install herald\n")
    assert run(tool("hadolint"), path).returncode != 0
