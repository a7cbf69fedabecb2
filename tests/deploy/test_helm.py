"""deploy/helm/auth-proxy: ``helm lint``, ``helm template`` with the default, sidecar and full values,
the rendered manifests against the Kubernetes schemas (strict, offline), the objects agreeing with
each other, the rendered proxy.yaml passing the proxy's own ``--check-config``, and
values.schema.json refusing bad values.

helm is a Go module: built once with ``go install helm.sh/helm/v4/cmd/helm@VERSION`` into
~/.cache/auth-proxy/helm/VERSION (about 10 minutes on a busy 2-CPU machine; later runs reuse it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT

VERSION = "v4.3.2"
MODULE = "helm.sh/helm/v4/cmd/helm"
CHART = ROOT / "deploy" / "helm" / "auth-proxy"
K8S_VERSION = "1.31"
VALUES = {"default": [], "sidecar": ["-f", "ci/sidecar-values.yaml"], "full": ["-f", "ci/full-values.yaml"]}
STAND_IN = {"client_secret": "stand-in-client-secret", "cookie_secret": "s" * 32}


def helm_binary() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = base / "auth-proxy" / "helm" / VERSION / "helm"
    if target.exists():
        return target
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.fail(f"helm is not built at {target} and there is no `go` to build it")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as gobin:  # renamed in place once complete
        env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"}
        built = subprocess.run([go, "install", f"{MODULE}@{VERSION}"], env=env, cwd=gobin,
                               capture_output=True, text=True, timeout=1800)  # fmt: skip
        if built.returncode != 0:
            pytest.fail(f"go install {MODULE}@{VERSION} failed: {built.stderr[-2000:]}")
        os.replace(Path(gobin) / "helm", target)
    return target


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_binary()


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tempfile.mkdtemp(prefix="helm-home-")  # no user config, cache or repositories
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "HELM_CACHE_HOME": home,
           "HELM_CONFIG_HOME": home, "HELM_DATA_HOME": home}  # fmt: skip
    try:
        return subprocess.run(
            [str(helm), *args], capture_output=True, text=True, cwd=CHART, env=env, timeout=120
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


def render(helm: Path, *args: str) -> list[dict[str, Any]]:
    done = run_helm(helm, "template", "rel", ".", "--namespace", "auth", *args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def named(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.fixture(scope="module", params=list(VALUES))
def rendered(request: pytest.FixtureRequest, helm: Path) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(helm, *VALUES[request.param])


@pytest.mark.parametrize("values", list(VALUES))
def test_helm_lint(helm: Path, values: str) -> None:
    done = run_helm(helm, "lint", ".", "--strict", *VALUES[values])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_the_objects_each_values_file_renders(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    kinds = sorted(o["kind"] for o in objects)
    expected = ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"]
    if name == "full":
        expected += ["HorizontalPodAutoscaler", "ServiceMonitor"]
    assert kinds == sorted(expected)
    assert not named(objects, "Secret"), "the chart never holds the secrets"


def test_manifests_match_the_kubernetes_schema(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    problems = []
    for doc in rendered[1]:
        if doc["kind"] == "ServiceMonitor":  # a CRD: test_service_monitor checks it
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not problems, problems


def proxy_container(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (deployment,) = named(objects, "Deployment")
    pod = deployment["spec"]["template"]
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "auth-proxy"]
    return pod, container


def config_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (config_map,) = named(objects, "ConfigMap")
    return dict(yaml.safe_load(config_map["data"]["proxy.yaml"]))


def test_objects_agree(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    pod, container = proxy_container(objects)
    labels = pod["metadata"]["labels"]
    (deployment,) = named(objects, "Deployment")
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (service,) = named(objects, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [("http", "http")]
    assert [p["name"] for p in container["ports"]] == ["http"]
    for budget in named(objects, "PodDisruptionBudget"):
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for hpa in named(objects, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == named(objects, "ConfigMap")[0]["metadata"]["name"]
    # the secret files the config names are where the existing Secret is mounted
    config = config_of(objects)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for section, key in (("provider", "client_secret_file"), ("cookie", "secret_file")):
        path = PurePosixPath(config[section][key])
        secret = volumes[mounts[str(path.parent)]]["secret"]
        assert path.name in [i["path"] for i in secret["items"]]
        assert secret["secretName"] == "auth-proxy-secrets"


def test_proxy_container_is_hardened_and_probed(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    pod, container = proxy_container(rendered[1])
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert "checksum/config" in pod["metadata"]["annotations"]


def check_config(config: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None) -> str:
    """``python -m proxy --check-config`` on the rendered config, secret files replaced by stand-ins."""
    for section, key, secret in (("provider", "client_secret_file", "client_secret"),
                                 ("cookie", "secret_file", "cookie_secret")):  # fmt: skip
        stand_in = tmp_path / secret
        stand_in.write_text(STAND_IN[secret] + "\n", encoding="utf-8")
        config[section][key] = str(stand_in)
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("AUTH_PROXY_")}
    done = subprocess.run([sys.executable, "-m", "proxy", "--config", str(path), "--check-config"],
                          capture_output=True, text=True, cwd=ROOT, env={**clean, **(env or {})},
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rendered_config_passes_the_proxys_own_check(
    rendered: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    name, objects = rendered
    config = config_of(objects)
    assert config["server"]["listen"] == "0.0.0.0:4180"
    assert config["session"]["store"] == "redis"
    env: dict[str, str] = {}
    _, container = proxy_container(objects)
    for var in container.get("env", []):  # as Kubernetes expands $(NAME) from earlier variables
        if "value" in var:
            value = var["value"].replace("$(REDIS_PASSWORD)", "stand-in-password")
            env[var["name"]] = value
    check_config(config, tmp_path, env)


def test_sidecar_mode_puts_the_app_behind_the_proxy(helm: Path) -> None:
    objects = render(helm, *VALUES["sidecar"])
    pod, container = proxy_container(objects)
    others = [c for c in pod["spec"]["containers"] if c is not container]
    assert [c["image"] for c in others] == ["ghcr.io/example/app:1.0"]
    assert not any(c.get("ports") for c in others), "the app listens on the loopback only"
    assert config_of(objects)["upstreams"] == [{"prefix": "/", "url": "http://127.0.0.1:8080"}]
    own = render(helm, *VALUES["sidecar"], "--set", "sidecar.app.port=3000")
    assert config_of(own)["upstreams"] == [{"prefix": "/", "url": "http://127.0.0.1:3000"}]


def test_deployment_mode_keeps_the_configured_upstreams_and_auth_only_mode(helm: Path) -> None:
    assert config_of(render(helm))["upstreams"] == [
        {"prefix": "/", "url": "http://app.default.svc.cluster.local:8080"}
    ]
    auth_only = config_of(render(helm, "--set", "config.upstreams=null"))
    assert "upstreams" not in auth_only


def test_trusted_proxies_name_the_ingress_not_every_peer(helm: Path) -> None:
    """The default believes forwarding headers from the Pod network only; the deprecated
    trust_forwarded_headers (every peer) next to it fails at render time, as the proxy would refuse
    it at start-up, and still renders alone for a values file that lifts trusted_proxies."""
    server = config_of(render(helm))["server"]
    assert server["trusted_proxies"] == ["10.0.0.0/8"]
    assert "trust_forwarded_headers" not in server
    done = run_helm(helm, "template", "rel", ".", "--set", "config.server.trust_forwarded_headers=true")
    assert done.returncode != 0
    assert "config.server.trust_forwarded_headers is deprecated" in done.stderr, done.stderr
    old = config_of(render(helm, "--set", "config.server.trust_forwarded_headers=true",
                           "--set", "config.server.trusted_proxies=null"))["server"]  # fmt: skip
    assert old["trust_forwarded_headers"] is True and "trusted_proxies" not in old


def test_redis_password_and_url_come_from_existing_secrets(helm: Path, tmp_path: Path) -> None:
    _, container = proxy_container(render(helm, *VALUES["full"]))
    env = container["env"]
    assert [v["name"] for v in env] == ["REDIS_PASSWORD", "AUTH_PROXY_SESSION__REDIS_URL"]  # order matters
    assert env[0]["valueFrom"]["secretKeyRef"] == {"name": "redis-auth", "key": "password"}
    assert env[1]["value"] == "rediss://:$(REDIS_PASSWORD)@redis.example.internal:6380/0"
    _, container = proxy_container(render(helm, "--set", "redis.urlSecret.name=redis-url"))
    whole_url = {"secretKeyRef": {"name": "redis-url", "key": "redis-url"}}
    assert container["env"] == [{"name": "AUTH_PROXY_SESSION__REDIS_URL", "valueFrom": whole_url}]
    _, container = proxy_container(render(helm))
    assert "env" not in container


def test_service_monitor(helm: Path) -> None:
    objects = render(helm, *VALUES["full"])
    (monitor,) = named(objects, "ServiceMonitor")
    (service,) = named(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("replicaCount=two", "/replicaCount"),
        ("mode=daemonset", "/mode"),
        ("redis.url=redis://:secret@redis:6379/0", "/redis/url"),  # a password never in a ConfigMap
        ("redis.url=http://redis:6379", "/redis/url"),
        ("image.digest=latest", "/image/digest"),
        ("secrets.existingSecret=Bad_Name", "/secrets/existingSecret"),
        ("serviceMonitor.interval=often", "/serviceMonitor/interval"),
        ("autoscaling.enabeld=true", "enabeld"),
        ("replicas=2", "replicas"),
        ("containerPort=70000", "/containerPort"),
        ("config.server.trusted_proxies=10.0.0.0/8", "/config/server/trusted_proxies"),  # a list
    ],
)
def test_values_schema_refuses_bad_values(helm: Path, setting: str, message: str) -> None:
    done = run_helm(helm, "template", "rel", ".", "--set", setting)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_a_bad_proxy_setting_in_values_is_caught_by_check_config(helm: Path, tmp_path: Path) -> None:
    config = config_of(render(helm, "--set", "config.session.lifetime=forever"))
    with pytest.raises(AssertionError, match="session.lifetime"):
        check_config(config, tmp_path)
