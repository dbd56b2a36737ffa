"""The deployment files name the commands, ports, paths and settings that Herald really has, so they cannot drift.

Docker Compose, the rendered Kubernetes overlays, the GitLab CI config and the Dockerfile are read as data and
checked against `herald.config`, the `herald` command's own usage line, config.yaml's defaults and the routes of
the real applications. The container configurations are loaded with `load_config`, so a value Herald would refuse
at start (a bad port, login required off loopback) fails here too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from herald.app import Role, create_app
from herald.config import Config, load_config
from herald.probe.app import create_probe_app
from tests.deploy.files import (
    OVERLAYS,
    REPO,
    compose,
    config_env_names,
    containers,
    env_file,
    gitlab_ci,
    herald_subcommands,
    interpolate,
    load_yaml,
    of_kind,
    rendered,
)

DEFAULTS = load_config(REPO / "config.yaml", env={})
SAMPLE_SECRET = "0123456789abcdef" * 4
# What an operator fills in where .env.example and the Secret template leave a blank: a secret, or one of these.
SAMPLES = {
    "HERALD_MONGO_URL": "mongodb://mongo:27017/herald",
    "HERALD_AUTH_API_TOKENS": f"admin:{hashlib.sha256(SAMPLE_SECRET.encode()).hexdigest()}",
}


def filled(template: dict[str, str]) -> dict[str, str]:
    return {name: value or SAMPLES.get(name, SAMPLE_SECRET) for name, value in template.items()}


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def dockerfile_env() -> dict[str, str]:
    """The ENV of the runtime stage (the last FROM), as every container of the image starts with it."""
    runtime = dockerfile().rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV (.*?)(?<!\\)$", runtime, flags=re.MULTILINE | re.DOTALL):
        env.update(re.findall(r"(\w+)=(\S+)", block))
    return env


def compose_herald_services() -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose()["services"].items() if "build" in service}


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment as its container gets it, with .env made from .env.example."""
    dotenv = filled(env_file(".env.example"))
    return {name: interpolate(str(value), dotenv) for name, value in service.get("environment", {}).items()}


def secret_template() -> dict[str, Any]:
    return load_yaml("deploy/k8s/base/secret.template.yaml")


def pod_env(manifests: tuple[dict[str, Any], ...], container: dict[str, Any]) -> dict[str, str]:
    """A container's environment: the image's ENV, then envFrom in order, then env (Kubernetes' precedence)."""
    config_maps = of_kind(manifests, "ConfigMap")
    env = dockerfile_env()
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= config_maps[source["configMapRef"]["name"]]["data"]
        if "secretRef" in source:
            assert source["secretRef"]["name"] == secret_template()["metadata"]["name"]
            env |= filled(secret_template()["stringData"])
    return env | {item["name"]: item["value"] for item in container.get("env", [])}


def herald_containers(overlay: str) -> list[tuple[str, dict[str, Any]]]:
    """(herald subcommand, container) for each container of the Herald image in an overlay; there must be some."""
    found = [
        (container["args"][0], container)
        for _, container in containers(rendered(overlay))
        if container["image"].split("/")[-1].split(":")[0] == "herald"
    ]
    assert found, f"no container of the Herald image in the {overlay} overlay"
    return found


# Settings and variables


def test_every_herald_variable_names_a_config_key() -> None:
    named = set(dockerfile_env()) | set(env_file(".env.example")) | set(secret_template()["stringData"])
    for service in compose()["services"].values():
        named |= set(service.get("environment", {}))
    for overlay in OVERLAYS:
        for config_map in of_kind(rendered(overlay), "ConfigMap").values():
            named |= set(config_map["data"])
        for _, container in containers(rendered(overlay)):
            named |= {item["name"] for item in container.get("env", [])}
    ci = gitlab_ci()
    named |= set(ci["variables"])
    for job in ci.values():
        if isinstance(job, dict):
            named |= set(job.get("variables", {}))
    herald_names = {name for name in named if name.startswith("HERALD_")}
    assert herald_names, "no HERALD_ variable found: the parsing is wrong"
    assert herald_names - config_env_names() == set()


@pytest.mark.parametrize("service", sorted(compose_herald_services()))
def test_compose_service_starts_with_its_configuration(service: str) -> None:
    env = dockerfile_env() | compose_env(compose_herald_services()[service])
    load_config(REPO / "config.yaml", env=env)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_pods_start_with_their_configuration(overlay: str) -> None:
    manifests = rendered(overlay)
    for _, container in herald_containers(overlay):
        load_config(REPO / "config.yaml", env=pod_env(manifests, container))


def test_image_reads_the_config_file_it_copies() -> None:
    assert dockerfile_env()["HERALD_CONFIG"] == "/app/config.yaml"
    assert re.search(r"^COPY config\.yaml \./$", dockerfile(), flags=re.MULTILINE)
    assert re.search(r"^WORKDIR /app$", dockerfile(), flags=re.MULTILINE)


def test_compose_login_provider_issues_what_herald_checks() -> None:
    """The development provider's issuer, audiences and roles are the ones the Herald services are set to check."""
    env = compose_env(compose_herald_services()["api"])
    config = load_config(REPO / "config.yaml", env=dockerfile_env() | env)
    provider = compose()["services"]["oidc"]
    provider_config = json.loads(provider["environment"]["JSON_CONFIG"])
    issuer = urlsplit(config.auth.issuer)
    assert issuer.hostname in provider["networks"]["default"]["aliases"]
    assert provider["environment"]["SERVER_PORT"] == str(issuer.port)
    assert provider["ports"] == [f"127.0.0.1:{issuer.port}:{issuer.port}"]
    (callback,) = provider_config["tokenCallbacks"]
    assert f"/{callback['issuerId']}" == issuer.path
    claims = callback["requestMappings"][0]["claims"]
    assert {config.auth.audience, config.auth.client_id} <= set(claims["aud"])
    assert config.auth.admin_role in claims[config.auth.roles_claim]


# Commands


def test_images_run_real_herald_subcommands() -> None:
    subcommands = herald_subcommands()
    assert re.search(r'^ENTRYPOINT \["herald"\]$', dockerfile(), flags=re.MULTILINE)
    assert set(re.findall(r'^CMD \["([\w-]+)"\]$', dockerfile(), flags=re.MULTILINE)) <= subcommands
    for name, service in compose_herald_services().items():
        assert service["command"][0] in subcommands, name
    for overlay in OVERLAYS:
        for command, container in herald_containers(overlay):
            assert "command" not in container, "the image's entrypoint is `herald`"
            assert command in subcommands, container["name"]


def test_ci_deploys_what_the_production_overlay_defines() -> None:
    job = gitlab_ci()["deploy-production"]
    script = "\n".join(job["script"])
    manifests = rendered("production")
    namespace = {manifest["metadata"]["namespace"] for manifest in manifests}
    assert namespace == set(re.findall(r"--namespace (\S+)", script))
    assert set(re.findall(r"deployment/(\S+)", script)) == set(of_kind(manifests, "Deployment"))
    assert "cd deploy/k8s/overlays/production" in script
    base_images = {image["name"] for image in load_yaml("deploy/k8s/base/kustomization.yaml")["images"]}
    assert set(re.findall(r'set image "(\w+)=', script)) == base_images


def test_ci_tests_against_the_same_mongodb_as_compose_and_the_development_cluster() -> None:
    ci_services = {service["name"] for service in gitlab_ci()["test"]["services"]}
    development = {container["image"] for _, container in containers(rendered("development"))}
    mongo = compose()["services"]["mongo"]["image"]
    assert mongo.startswith("mongo:7.")
    assert mongo in ci_services
    assert mongo in development


def test_ci_uses_the_image_python_and_the_pinned_checkers() -> None:
    python_image = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile(), flags=re.MULTILINE)[1]
    assert gitlab_ci()["lint"]["image"] == python_image
    test_extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    pinned = {canonicalize_name(Requirement(spec).name): spec for spec in test_extra}
    installs = " ".join(gitlab_ci()["lint"]["script"])
    shared = [
        spec
        for spec in re.findall(r"([\w-]+==[\w.]+)", installs)
        if canonicalize_name(Requirement(spec).name) in pinned
    ]
    assert shared, "the lint job installs none of the test extra's checkers"
    for spec in shared:
        assert pinned[canonicalize_name(Requirement(spec).name)] == spec


# Ports and paths


def routes(app: Any) -> set[str]:
    return {resource.canonical for resource in app.router.resources()}


def test_docker_image_exposes_the_configured_ports() -> None:
    exposed = {int(port) for port in re.search(r"^EXPOSE (.+)$", dockerfile(), flags=re.MULTILINE)[1].split()}
    assert exposed == {DEFAULTS.http.port, DEFAULTS.http.worker_port, DEFAULTS.probe.port}


def test_compose_publishes_the_configured_ports() -> None:
    services = compose()["services"]
    assert services["api"]["ports"] == [f"127.0.0.1:{DEFAULTS.http.port}:{DEFAULTS.http.port}"]
    assert services["probe"]["ports"] == [f"127.0.0.1:{DEFAULTS.probe.port}:{DEFAULTS.probe.port}"]
    # Published ports would collide between replicas: `--scale worker=3` needs none, and no fixed name.
    assert "ports" not in services["worker"] and "container_name" not in services["worker"]


def test_compose_workers_send_to_the_emulator_service() -> None:
    url = urlsplit(compose_env(compose_herald_services()["worker"])["HERALD_SENDER_URL"])
    assert (url.hostname, url.port) == ("probe", DEFAULTS.probe.port)
    assert f"{url.path}/send/{{msg_id}}" in routes(create_probe_app(DEFAULTS.probe))


def test_prometheus_scrapes_metrics_where_herald_serves_them() -> None:
    jobs = {job["job_name"]: job for job in load_yaml("deploy/prometheus/prometheus.yml")["scrape_configs"]}
    assert jobs["herald-api"]["static_configs"][0]["targets"] == [f"api:{DEFAULTS.http.port}"]
    worker_discovery = jobs["herald-worker"]["dns_sd_configs"][0]
    assert (worker_discovery["names"], worker_discovery["port"]) == (["worker"], DEFAULTS.http.worker_port)
    for job in jobs.values():
        assert job["metrics_path"] == "/metrics"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ({Role.API}, {"/healthz", "/readyz", "/metrics"}),
        ({Role.PLANNER, Role.DISPATCHER}, {"/healthz", "/readyz", "/metrics"}),
    ],
)
def test_herald_serves_the_probe_and_metrics_paths(roles: set[Role], expected: set[str]) -> None:
    assert expected <= routes(create_app(DEFAULTS, roles=roles))


def expected_port(config: Config, command: str) -> int:
    return {
        "api": config.http.port,
        "serve": config.http.port,
        "worker": config.http.worker_port,
        "probe": config.probe.port,
    }[command]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_ports_probes_and_scrape_annotations_match_herald(overlay: str) -> None:
    manifests = rendered(overlay)
    paths = {
        "api": routes(create_app(DEFAULTS, roles={Role.API})),
        "worker": routes(create_app(DEFAULTS, roles={Role.PLANNER, Role.DISPATCHER})),
        "probe": routes(create_probe_app(DEFAULTS.probe)),
    }
    workloads = {container["name"]: workload for workload, container in containers(manifests)}
    for command, container in herald_containers(overlay):
        port = expected_port(DEFAULTS, command)
        (declared,) = container["ports"]
        assert declared["containerPort"] == port, container["name"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["port"] == declared["name"]
            assert container[probe]["httpGet"]["path"] in paths[command]
        if command != "probe":
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            annotations = workloads[container["name"]]["spec"]["template"]["metadata"]["annotations"]
            assert int(annotations["prometheus.io/port"]) == port
            assert annotations["prometheus.io/path"] in paths[command]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_services_and_ingress_reach_declared_ports(overlay: str) -> None:
    manifests = rendered(overlay)
    services = of_kind(manifests, "Service")
    pod_labels = [
        (workload["spec"]["template"]["metadata"]["labels"], container) for workload, container in containers(manifests)
    ]
    for name, service in services.items():
        selector = service["spec"]["selector"]
        selected = [container for labels, container in pod_labels if selector.items() <= labels.items()]
        assert selected, f"service {name} selects no pod"
        port_names = {port["name"] for container in selected for port in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port.get("targetPort", port["port"]) in port_names | {port["port"]}
    api_routes = routes(create_app(DEFAULTS, roles={Role.API}))
    for ingress in of_kind(manifests, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["port"]["name"] in {port["name"] for port in services[backend["name"]]["spec"]["ports"]}
                assert any(route.startswith(path["path"]) for route in api_routes), path["path"]
                internal = ("/metrics", "/healthz", "/readyz")
                assert not any(endpoint.startswith(path["path"]) for endpoint in internal), path["path"]


def test_development_workers_send_to_the_emulator_service() -> None:
    manifests = rendered("development")
    (config_map,) = of_kind(manifests, "ConfigMap").values()
    url = urlsplit(config_map["data"]["HERALD_SENDER_URL"])
    (port,) = of_kind(manifests, "Service")[url.hostname]["spec"]["ports"]
    assert port["port"] == url.port == DEFAULTS.probe.port
    assert f"{url.path}/send/{{msg_id}}" in routes(create_probe_app(DEFAULTS.probe))


def test_production_runs_no_database_and_no_emulator() -> None:
    kinds_and_names = {(manifest["kind"], manifest["metadata"]["name"]) for manifest in rendered("production")}
    assert not any(kind == "StatefulSet" for kind, _ in kinds_and_names)
    assert ("Deployment", "herald-probe") not in kinds_and_names


# The image's contents


def test_lock_pins_every_runtime_dependency() -> None:
    pins = dict(re.findall(r"^([\w.-]+)==(\S+) \\$", (REPO / "requirements.lock").read_text(), flags=re.MULTILINE))
    pins = {canonicalize_name(name): version for name, version in pins.items()}
    for spec in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: regenerate it (command at its top)"
        assert requirement.specifier.contains(pins[name]), f"requirements.lock pins {name}=={pins[name]}: {spec}"


def test_wheel_ships_every_package_file(tmp_path: Path) -> None:
    """The image installs Herald from a wheel: templates, static files and py.typed must be in it."""
    # The builder stage's context: what the Dockerfile copies, and nothing else.
    context = tmp_path / "context"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", context / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, context)
    # The virtualenv's setuptools builds it: the tests download nothing.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            tmp_path,
            context,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("herald-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    source = REPO / "src"
    package_files = {
        path.relative_to(source).as_posix()
        for path in (source / "herald").rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }
    assert package_files - shipped == set()


@pytest.mark.parametrize(
    ("cmdline", "url"),
    [
        (["/usr/local/bin/python", "/usr/local/bin/herald", "api"], "http://127.0.0.1:8080/healthz"),
        (["/usr/local/bin/python", "/usr/local/bin/herald", "worker"], "http://127.0.0.1:8081/healthz"),
        (["/usr/local/bin/python", "/usr/local/bin/herald", "probe"], "http://127.0.0.1:8090/_probe/stats"),
        (["/usr/local/bin/python", "/usr/local/bin/herald"], "http://127.0.0.1:8080/healthz"),
    ],
)
def test_image_healthcheck_asks_the_running_command(cmdline: list[str], url: str) -> None:
    spec = importlib.util.spec_from_file_location("healthcheck", REPO / "deploy/docker/healthcheck.py")
    assert spec and spec.loader
    healthcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(healthcheck)
    assert healthcheck.health_url(cmdline, DEFAULTS) == url
