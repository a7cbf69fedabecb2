"""The recipes under deploy/ that can't run here (no cluster, Traefik or Docker engine), checked
statically: the YAML parses; the Kubernetes manifests validate against the Kubernetes OpenAPI schemas
(strict: unknown fields fail; the schemas ship in the kubernetes-validate package, no network) and agree
with each other; the ingress-nginx annotations pass ingress-nginx's own annotation validation; every
proxy configuration shipped passes the proxy's own validation; Traefik and Compose say what their
READMEs promise."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import pytest
import yaml

from proxy.config import ConfigError, Settings, load_settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
K8S_VERSION = "1.31"
RECIPES = sorted(p.parent.name for p in KUBERNETES.glob("*/kustomization.yaml"))
IDENTITY_HEADERS = {
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Preferred-Username",
    "X-Auth-Request-Groups",
    "X-Auth-Request-Roles",  # headers.inject's default
}
NARROWING = {"allowed_groups", "allowed_emails", "allowed_email_domains"}
SECRET_KEYS = (("provider", "client_secret_file"), ("cookie", "secret_file"))
STAND_IN_SECRETS = {"client_secret_file": "stand-in-client-secret", "secret_file": "s" * 32}


def documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(autouse=True)
def no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped files alone decide: no AUTH_PROXY_* from the environment of whoever runs this."""
    for name in list(os.environ):
        if name.upper().startswith("AUTH_PROXY_"):
            monkeypatch.delenv(name)


# --- every YAML file ---------------------------------------------------------------------------

HELM_TEMPLATES = DEPLOY / "helm"
"""Helm charts: their templates are Go templates, not YAML (tests/deploy/test_helm.py renders them)."""
YAML_FILES = sorted(
    p
    for p in [*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]
    if not (p.is_relative_to(HELM_TEMPLATES) and "templates" in p.relative_to(HELM_TEMPLATES).parts)
)


def test_the_recipes_are_all_there() -> None:
    assert RECIPES == ["ingress-nginx", "sidecar"]
    for name in ("traefik/dynamic.yaml", "traefik/proxy.yaml", "compose/docker-compose.yml"):
        assert (DEPLOY / name).is_file(), name


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_yaml_parses(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{rel(path)} is empty"
    assert all(isinstance(d, dict) for d in docs), f"{rel(path)}: every document must be a mapping"


# --- Kubernetes: schemas -----------------------------------------------------------------------


def manifest_documents() -> Iterator[Any]:
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for index, doc in enumerate(documents(path)):
            kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
            yield pytest.param(doc, id=f"{path.relative_to(KUBERNETES)}#{index}:{kind}/{name}")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("schema validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("doc", list(manifest_documents()))
def test_manifest_matches_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top)"
        problem = f"{doc['kind']}/{doc['metadata']['name']}: {where}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:  # a kind Kubernetes doesn't have
        problem = exc.message
    else:
        return
    pytest.fail(problem)


@pytest.mark.usefixtures("offline")
def test_the_schema_check_is_strict() -> None:
    """A misspelt field fails (it would be dropped silently by a lenient check), and so does a wrong type."""
    deployment = documents(KUBERNETES / "ingress-nginx" / "deployment.yaml")[0]
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)
    wrong = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, K8S_VERSION, strict=True)


# --- Kubernetes: each recipe as a whole ----------------------------------------------------------


@dataclass
class Recipe:
    name: str
    directory: Path
    kustomization: dict[str, Any]
    objects: list[dict[str, Any]]

    @classmethod
    def load(cls, name: str) -> Recipe:
        directory = KUBERNETES / name
        kustomization = documents(directory / "kustomization.yaml")[0]
        files = [directory / r for r in kustomization.get("resources", [])]
        # A missing file is test_kustomization_lists_exactly_the_files_beside_it's to report.
        objects = [d for f in files if f.is_file() for d in documents(f)]
        return cls(name, directory, kustomization, objects)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert found, f"{self.name}: no {kind} named {name!r}"
        return found[0]

    @property
    def namespace(self) -> str | None:
        return self.kustomization.get("namespace")

    def pods(self) -> list[dict[str, Any]]:
        """Pod templates (of Deployments, StatefulSets, DaemonSets)."""
        return [o["spec"]["template"] for o in self.objects if "template" in o.get("spec", {})]

    def pods_selected_by(self, match_labels: dict[str, str]) -> list[dict[str, Any]]:
        return [p for p in self.pods() if match_labels.items() <= p["metadata"]["labels"].items()]

    def config_map_key(self, name: str, key: str) -> str:
        data = self.named("ConfigMap", name).get("data", {})
        assert key in data, f"{self.name}: ConfigMap {name} has no key {key!r}"
        return str(data[key])

    def secret_keys(self, name: str) -> set[str]:
        secret = self.named("Secret", name)
        return {*secret.get("data", {}), *secret.get("stringData", {})}


@pytest.fixture(params=RECIPES)
def recipe(request: pytest.FixtureRequest) -> Recipe:
    return Recipe.load(request.param)


def referenced_files(kustomization: dict[str, Any]) -> list[str]:
    files = [*kustomization.get("resources", []), *kustomization.get("components", [])]
    files += [p["path"] for p in kustomization.get("patches", []) if "path" in p]
    files += kustomization.get("patchesStrategicMerge", [])
    for generator in (
        *kustomization.get("configMapGenerator", []),
        *kustomization.get("secretGenerator", []),
    ):
        files += [f.rpartition("=")[2] for f in generator.get("files", [])]
        files += generator.get("envs", [])
    return files


def test_kustomization_lists_exactly_the_files_beside_it(recipe: Recipe) -> None:
    listed = referenced_files(recipe.kustomization)
    assert len(listed) == len(set(listed)), f"{recipe.name}: a file is listed twice"
    for name in listed:
        assert "/" not in name, f"{recipe.name}: {name!r} is outside the recipe"
        assert (recipe.directory / name).is_file(), f"{recipe.name}/kustomization.yaml: {name} does not exist"
    present = {p.name for p in recipe.directory.glob("*.yaml")} - {"kustomization.yaml"}
    assert present - set(listed) == set(), f"{recipe.name}: files not in kustomization.yaml"


def test_objects_are_unique_and_namespaced_by_kustomize(recipe: Recipe) -> None:
    keys = [(o["kind"], o["metadata"]["name"]) for o in recipe.objects]
    assert len(keys) == len(set(keys)), f"{recipe.name}: duplicate objects"
    for obj in recipe.objects:
        assert "namespace" not in obj["metadata"], "leave namespaces to kustomization.yaml"
    for namespace in recipe.of_kind("Namespace"):
        assert namespace["metadata"]["name"] == recipe.namespace


def test_workloads_selectors_and_references_agree(recipe: Recipe) -> None:
    for workload in recipe.objects:
        if "template" not in workload.get("spec", {}):
            continue
        labels = workload["spec"]["template"]["metadata"]["labels"]
        match = workload["spec"]["selector"]["matchLabels"]
        assert match.items() <= labels.items(), f"{workload['metadata']['name']}: selector misses its Pods"
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                recipe.named("ConfigMap", volume["configMap"]["name"])
            if "secret" in volume:
                recipe.named("Secret", volume["secret"]["secretName"])
        for container in pod["containers"]:
            port_names = {p["name"] for p in container.get("ports", []) if "name" in p}
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{container['name']}: no volume {mount['name']!r}"
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                action = container.get(probe, {}).get("httpGet") or container.get(probe, {}).get("tcpSocket")
                if action and isinstance(action["port"], str):
                    assert action["port"] in port_names, f"{container['name']}.{probe}: no such port"


def container_ports(pods: list[dict[str, Any]]) -> tuple[set[str], set[int]]:
    ports = [p for pod in pods for c in pod["spec"]["containers"] for p in c.get("ports", [])]
    return {p["name"] for p in ports if "name" in p}, {p["containerPort"] for p in ports}


def test_services_reach_pods_and_ports(recipe: Recipe) -> None:
    for service in recipe.of_kind("Service"):
        pods = recipe.pods_selected_by(service["spec"]["selector"])
        assert pods, f"Service {service['metadata']['name']} selects no Pod"
        names, numbers = container_ports(pods)
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in (names if isinstance(target, str) else numbers), f"{service}: {target}"


def test_ingresses_route_to_service_ports(recipe: Recipe) -> None:
    for ingress in recipe.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = recipe.named("Service", backend["name"])
                ports = service["spec"]["ports"]
                wanted = backend["port"]
                assert any(
                    p.get("name") == wanted.get("name") or p["port"] == wanted.get("number") for p in ports
                ), f"Ingress {ingress['metadata']['name']}: Service {backend['name']} has no port {wanted}"


def test_network_policies_and_budgets_select_pods(recipe: Recipe) -> None:
    for policy in recipe.of_kind("NetworkPolicy"):
        pods = recipe.pods_selected_by(policy["spec"]["podSelector"]["matchLabels"])
        assert pods, f"NetworkPolicy {policy['metadata']['name']} selects no Pod"
        names, numbers = container_ports(pods)
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                if "podSelector" in peer:
                    assert recipe.pods_selected_by(peer["podSelector"]["matchLabels"]), peer
            for port in rule.get("ports", []):
                assert port["port"] in (names if isinstance(port["port"], str) else numbers), port
    for budget in recipe.of_kind("PodDisruptionBudget"):
        assert recipe.pods_selected_by(budget["spec"]["selector"]["matchLabels"])


# --- Kubernetes: the proxy's containers -----------------------------------------------------------


@dataclass
class ProxyPod:
    pod: dict[str, Any]
    container: dict[str, Any]
    config_text: str
    config: dict[str, Any]


def proxy_pods(recipe: Recipe) -> list[ProxyPod]:
    found = []
    for pod in recipe.pods():
        for container in pod["spec"]["containers"]:
            if not container["image"].split(":")[0].endswith("auth-proxy"):
                continue
            args = container.get("args", ["--config", "/config/proxy.yaml"])  # the image's CMD
            assert args[0] == "--config" and len(args) == 2, args
            config_path = PurePosixPath(args[1])
            mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config_path.parent))
            volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
            text = recipe.config_map_key(volume["configMap"]["name"], config_path.name)
            found.append(ProxyPod(pod, container, text, yaml.safe_load(text)))
    assert found, f"{recipe.name}: no auth-proxy container"
    return found


def test_proxy_container_is_hardened_and_probed(recipe: Recipe) -> None:
    for proxy in proxy_pods(recipe):
        container, pod_spec = proxy.container, proxy.pod["spec"]
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert pod_spec["automountServiceAccountToken"] is False
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/ping"
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]
        assert [p["containerPort"] for p in container["ports"]] == [4180]


def test_secret_files_are_where_the_secret_is_mounted(recipe: Recipe) -> None:
    for proxy in proxy_pods(recipe):
        volumes = {v["name"]: v for v in proxy.pod["spec"]["volumes"]}
        mounts = {
            m["mountPath"]: volumes[m["name"]]["secret"]["secretName"]
            for m in proxy.container["volumeMounts"]
            if "secret" in volumes[m["name"]]
        }
        for section, key in SECRET_KEYS:
            path = PurePosixPath(proxy.config[section][key])
            assert str(path.parent) in mounts, f"{section}.{key}: {path} is not in a mounted Secret"
            assert path.name in recipe.secret_keys(mounts[str(path.parent)]), f"{section}.{key}: {path}"


def test_redis_url_names_a_service_of_the_recipe(recipe: Recipe) -> None:
    for proxy in proxy_pods(recipe):
        url = urlsplit(proxy.config["session"]["redis_url"])
        service = recipe.named("Service", (url.hostname or "").split(".")[0])
        assert url.port in [p["port"] for p in service["spec"]["ports"]]


def test_services_in_front_of_the_proxy_expose_only_its_port(recipe: Recipe) -> None:
    proxy_labels = [p.pod["metadata"]["labels"] for p in proxy_pods(recipe)]
    for service in recipe.of_kind("Service"):
        if any(service["spec"]["selector"].items() <= labels.items() for labels in proxy_labels):
            assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(4180, "http")]


def test_sidecar_proxies_to_the_app_in_its_pod() -> None:
    (proxy,) = proxy_pods(Recipe.load("sidecar"))
    assert proxy.config["upstreams"] == [{"prefix": "/", "url": "http://127.0.0.1:8080"}]
    assert proxy.config["server"]["trusted_proxies"] == ["10.0.0.0/8"]  # the ingress controller's Pods
    others = [c for c in proxy.pod["spec"]["containers"] if c is not proxy.container]
    assert [c["image"] for c in others] == ["ghcr.io/example/app:1.0"]
    assert not any(c.get("ports") for c in others), "the app listens on the loopback only"


def test_ingress_nginx_proxy_is_auth_only() -> None:
    recipe = Recipe.load("ingress-nginx")
    (proxy,) = proxy_pods(recipe)
    assert "upstreams" not in proxy.config
    assert proxy.config["server"]["trusted_proxies"] == ["10.0.0.0/8"]  # the Pod network
    deployment = next(d for d in recipe.of_kind("Deployment") if d["spec"]["template"] is proxy.pod)
    assert deployment["spec"]["replicas"] == 2


# --- ingress-nginx annotations -------------------------------------------------------------------

# ingress-nginx's annotation validation (internal/ingress/annotations/parser/validators.go): the
# controller refuses an Ingress whose annotations don't match these.
_ALPHANUMERIC = r"\-\.\_\~a-zA-Z0-9\/:"
URL_WITH_NGINX_VARIABLE = re.compile("^[" + _ALPHANUMERIC + ", " + re.escape(",:?&=") + "$]*$")
HEADERS_VARIABLE = re.compile(r"^[A-Za-z0-9-_, ]*$")
NGINX = "nginx.ingress.kubernetes.io/"


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations", {}))


def test_ingress_nginx_annotations() -> None:
    recipe = Recipe.load("ingress-nginx")
    (proxy,) = proxy_pods(recipe)
    prefix = proxy.config["server"].get("proxy_prefix", "/oauth")
    protected = [i for i in recipe.of_kind("Ingress") if NGINX + "auth-url" in annotations_of(i)]
    assert len(protected) == 2
    narrowed = []
    for ingress in protected:
        notes = annotations_of(ingress)
        for key in ("auth-url", "auth-signin"):
            assert URL_WITH_NGINX_VARIABLE.match(notes[NGINX + key]), f"ingress-nginx rejects {key}"
        assert HEADERS_VARIABLE.match(notes[NGINX + "auth-response-headers"])

        url = urlsplit(notes[NGINX + "auth-url"])
        service_name, _, rest = (url.hostname or "").partition(".")
        assert rest == f"{recipe.namespace}.svc.cluster.local", "auth-url must name the proxy's namespace"
        service = recipe.named("Service", service_name)
        assert url.port == service["spec"]["ports"][0]["port"]
        assert proxy.pod in recipe.pods_selected_by(service["spec"]["selector"])
        assert url.path == f"{prefix}/auth"
        query = parse_qs(url.query)
        assert query.keys() <= NARROWING
        narrowed += query.get("allowed_groups", [])

        assert notes[NGINX + "auth-signin"] == f"https://$host{prefix}/start?rd=$escaped_request_uri"
        # X-Auth-Request-Redirect must stay $request_uri (the path the proxy checks); nothing may
        # add or change the headers of the auth subrequest
        for key in ("auth-request-redirect", "auth-snippet", "auth-proxy-set-headers", "auth-method"):
            assert NGINX + key not in notes, key
        assert set(notes[NGINX + "auth-response-headers"].split(",")) == IDENTITY_HEADERS

        # Sign-in happens on the protected host: the proxy's pages must be routed there, unprotected.
        for host in (r["host"] for r in ingress["spec"]["rules"]):
            assert any(
                rule["host"] == host
                and path["path"] == prefix
                and path["backend"]["service"]["name"] == service_name
                and NGINX + "auth-url" not in annotations_of(other)
                for other in recipe.of_kind("Ingress")
                for rule in other["spec"]["rules"]
                for path in rule["http"]["paths"]
            ), f"no {prefix} route to the proxy on {host}"
    assert narrowed == ["admins"]


# --- every proxy configuration shipped ------------------------------------------------------------


def shipped_configs() -> Iterator[Any]:
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        for doc in documents(path):
            if doc.get("kind") == "ConfigMap" and "proxy.yaml" in doc.get("data", {}):
                yield pytest.param(doc["data"]["proxy.yaml"], id=f"{rel(path)}:{doc['metadata']['name']}")
    for path in sorted(DEPLOY.glob("*/proxy.yaml")):
        yield pytest.param(path.read_text(encoding="utf-8"), id=rel(path))


def load_shipped(text: str, tmp_path: Path) -> Settings:
    """The proxy's own validation, with stand-in secret files where the config names files."""
    data = yaml.safe_load(text)
    for section, key in SECRET_KEYS:
        if key in data.get(section, {}):
            stand_in = tmp_path / f"{section}-{key}"
            stand_in.write_text(STAND_IN_SECRETS[key] + "\n", encoding="utf-8")
            data[section][key] = str(stand_in)
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_settings(path)


def test_there_are_four_shipped_configs() -> None:
    assert len(list(shipped_configs())) == 4


@pytest.mark.parametrize("text", list(shipped_configs()))
def test_shipped_config_is_valid(text: str, tmp_path: Path) -> None:
    settings = load_shipped(text, tmp_path)  # a ConfigError names every bad key
    assert settings.session.store == "redis"
    assert settings.server.port == 4180
    assert not settings.server.trust_forwarded_headers, "deprecated: trusted_proxies names the front"
    if settings.provider.issuer_url.startswith("https://"):  # a real deployment behind a proxy
        assert settings.server.trusted_proxies
        assert not any(n.prefixlen == 0 for n in settings.server.trusted_networks), "not every peer"
        assert settings.cookie.secure
        assert settings.provider.client_secret_file is not None and settings.cookie.secret_file is not None


FRONTS = {"traefik/proxy.yaml": "traefik", "kubernetes/ingress-nginx/configmap.yaml": "ingress-nginx"}


@pytest.mark.parametrize("text", list(shipped_configs()))
def test_shipped_config_names_its_front(text: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """An auth-only config (a front asks /oauth/auth) names that front; a reverse proxy names none."""
    settings = load_shipped(text, tmp_path)
    name = request.node.callspec.id.removeprefix("deploy/").partition(":")[0]
    expected = FRONTS.get(name, "none")
    assert settings.auth_request.front == expected
    assert (expected == "none") == bool(settings.upstreams)


def nginx_block(text: str, header: str) -> str:
    start = text.index(header)
    return text[start : text.index("\n    }", start)]


def test_nginx_recipe_tells_the_original_request_in_its_own_headers() -> None:
    text = (DEPLOY / "nginx" / "auth-proxy.conf").read_text(encoding="utf-8")
    assert "auth_request: { front: nginx }" in text
    auth = nginx_block(text, "location = /oauth/auth {")
    for line in ("X-Original-Method $request_method;", "X-Original-URI $request_uri;",
                 "X-Forwarded-Proto $scheme;", "X-Forwarded-Host $http_host;"):  # fmt: skip
        assert f"proxy_set_header {line}" in auth, line
    for other in ("X-Original-URL", "X-Auth-Request-Redirect", "X-Forwarded-Method", "X-Forwarded-Uri"):
        assert f'proxy_set_header {other} "";' in auth, other  # a client's copy never passes
    signin = nginx_block(text, "location @signin {")
    assert "proxy_set_header X-Original-URI $request_uri;" in signin
    assert "proxy_set_header X-Forwarded-Host $http_host;" in signin
    # the path is never cut out of a URL whose host part is the client's Host
    assert "$http_host$request_uri" not in text and "$host$request_uri" not in text
    assert 'proxy_set_header X-Original-URI "";' in nginx_block(text, "location /oauth/ {")


@pytest.mark.parametrize("recipe_name", RECIPES)
def test_placeholder_secrets_stop_the_proxy(recipe_name: str, tmp_path: Path) -> None:
    """The Secret's placeholders are unusable on purpose: deployed unedited, the proxy refuses to start."""
    recipe = Recipe.load(recipe_name)
    (secret,) = recipe.of_kind("Secret")
    (proxy,) = proxy_pods(recipe)
    data = yaml.safe_load(proxy.config_text)
    for section, key in SECRET_KEYS:
        name = PurePosixPath(data[section][key]).name
        placeholder = tmp_path / name
        placeholder.write_text(secret["stringData"][name], encoding="utf-8")
        data[section][key] = str(placeholder)
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match="cookie"):
        load_settings(path)


# --- Traefik ------------------------------------------------------------------------------------


TRAEFIK_REQUEST_HEADERS = {
    "Cookie", "Authorization", "Access-Control-Request-Method",
    # the method overrides an app may honour: authorization.rules with methods check them too
    "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
}  # fmt: skip


def test_traefik_forward_auth() -> None:
    (config,) = documents(DEPLOY / "traefik" / "dynamic.yaml")
    http = config["http"]
    middlewares = {name: m["forwardAuth"] for name, m in http["middlewares"].items() if "forwardAuth" in m}
    assert middlewares["auth-proxy"]["address"].endswith("/oauth/auth?redirect=1")
    for name, forward in middlewares.items():
        address = urlsplit(forward["address"])
        assert address.path == "/oauth/auth", name
        query = parse_qs(address.query)
        assert query.pop("redirect") == ["1"], name
        assert query.keys() <= NARROWING, name
        # Not needed (the proxy's Location is absolute) and refused by Traefik before 3.3:
        assert "preserveLocationHeader" not in forward, name
        # false: forwardAuth sets X-Forwarded-Method/-Proto/-Host/-Uri itself, whatever the client sent
        assert forward["trustForwardHeader"] is False, name
        # only what the check needs: a client's X-Original-URL & co. never reach the proxy
        assert set(forward["authRequestHeaders"]) == TRAEFIK_REQUEST_HEADERS, name
        assert IDENTITY_HEADERS <= set(forward["authResponseHeaders"]), name

    services = http["services"]
    proxy_url = urlsplit(middlewares["auth-proxy"]["address"])
    for name, router in http["routers"].items():
        assert router["service"] in services, name
        assert set(router.get("middlewares", [])) <= http["middlewares"].keys(), name
        if "PathPrefix(`/oauth/`)" in router["rule"]:
            assert not router.get("middlewares"), "the sign-in pages must not need a sign-in"
            server = urlsplit(services[router["service"]]["loadBalancer"]["servers"][0]["url"])
            assert server.netloc == proxy_url.netloc
        else:
            assert any(m in middlewares for m in router["middlewares"]), f"{name} is not protected"


# --- Docker Compose -----------------------------------------------------------------------------

COMPOSE = DEPLOY / "compose"


def compose_volumes(service: dict[str, Any]) -> dict[str, Path]:
    """target -> the host path, for short-syntax bind mounts (relative to the compose file)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = (COMPOSE / source).resolve()
    return out


def test_compose_services() -> None:
    (compose,) = documents(COMPOSE / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"keycloak", "redis", "proxy", "app"}
    assert {s["network_mode"] for s in services.values()} == {"host"}, "see deploy/compose/README.md"

    keycloak = services["keycloak"]
    assert keycloak["image"] == "quay.io/keycloak/keycloak:26.4"
    assert keycloak["command"][:2] == ["start-dev", "--import-realm"]
    (realm_target, realm_file), *_ = compose_volumes(keycloak).items()
    assert realm_file == ROOT / "config" / "keycloak-realm.json"
    assert realm_target.startswith("/opt/keycloak/data/import/")
    assert services["redis"]["image"] == "redis:7-alpine"

    proxy = services["proxy"]
    assert (COMPOSE / proxy["build"]["context"]).resolve() == ROOT
    assert (ROOT / proxy["build"].get("dockerfile", "Dockerfile")).is_file()
    assert compose_volumes(proxy) == {"/config/proxy.yaml": COMPOSE / "proxy.yaml"}

    app = services["app"]
    assert app["image"] == "python:3.11-slim"
    assert compose_volumes(app) == {"/app/sample_app.py": ROOT / "demo" / "sample_app.py"}
    assert all(v.endswith(":ro") for s in services.values() for v in s.get("volumes", []))
    assert "aiohttp" in " ".join(app["command"])


def option(command: list[str], name: str) -> str:
    for i, word in enumerate(command):
        if word == name:
            return command[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{name} not in {command}")


def test_compose_services_find_each_other(tmp_path: Path) -> None:
    """The proxy's config names the ports the other services listen on, and the demo realm's client."""
    (compose,) = documents(COMPOSE / "docker-compose.yml")
    services = compose["services"]
    settings = load_shipped((COMPOSE / "proxy.yaml").read_text(encoding="utf-8"), tmp_path)

    issuer = urlsplit(settings.provider.issuer_url)
    assert issuer.hostname == "127.0.0.1"
    assert str(issuer.port) == option(services["keycloak"]["command"], "--http-port")
    redis = urlsplit(settings.session.redis_url.get_secret_value())
    assert str(redis.port) == option(services["redis"]["command"], "--port")
    (upstream,) = settings.upstreams
    assert " ".join(services["app"]["command"]).endswith(f"sample_app.py {urlsplit(upstream.url).port}")

    realm = json.loads((ROOT / "config" / "keycloak-realm.json").read_text(encoding="utf-8"))
    assert issuer.path == f"/realms/{realm['realm']}"
    client = next(c for c in realm["clients"] if c["clientId"] == settings.provider.client_id)
    assert client["secret"] == settings.provider.secret
