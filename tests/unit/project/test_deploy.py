"""Deployment files: Kubernetes manifests validated offline against the Kubernetes JSON schemas (the
kubernetes-validate wheel ships them), and the Dockerfile/Procfile checked for what the platforms rely on.
The image itself is built and run by `make image-test` (.ci/image-smoke), which CI runs after the tests."""

from __future__ import annotations

import re

import pytest
import yaml

from tests import ROOT

K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30.0"


def manifests() -> list[dict]:
    docs = [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    assert {d["kind"] for d in docs} == {"Deployment", "Service", "HorizontalPodAutoscaler", "NetworkPolicy"}
    return docs


def find(kind: str, name: str) -> dict:
    (doc,) = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def env_of(deployment: dict) -> dict[str, str]:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in c["env"]}


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f'{d["kind"]}/{d["metadata"]["name"]}')
def test_manifest_is_valid_against_the_kubernetes_schema(doc):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # strict: unknown fields are errors too


def test_the_validator_catches_mistakes():
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    deployment = find("Deployment", "digitrec")
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", ["digitrec", "digitrec-redis"])
def test_deployments_are_non_root_read_only_with_resources(name):
    spec = find("Deployment", name)["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["readinessProbe"] and c["livenessProbe"]
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] and not c["securityContext"]["allowPrivilegeEscalation"]
    assert spec["automountServiceAccountToken"] is False


def test_deployment_probes_resources_and_security():
    spec = find("Deployment", "digitrec")["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] and not c["securityContext"]["allowPrivilegeEscalation"]
    # A read-only root still needs somewhere to write: /tmp (metrics files) and /data (SQLite) are volumes.
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/tmp", "/data"}
    deployment, redis = find("Deployment", "digitrec"), find("Deployment", "digitrec-redis")
    service = find("Service", "digitrec")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert not service["spec"]["selector"].items() <= redis["spec"]["template"]["metadata"]["labels"].items()
    hpa = next(d for d in manifests() if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "digitrec" and hpa["spec"]["minReplicas"] >= 2


def test_the_image_named_is_the_one_make_image_builds():
    (c,) = find("Deployment", "digitrec")["spec"]["template"]["spec"]["containers"]
    built = re.search(r"^IMAGE \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert c["image"] == built and c["imagePullPolicy"] == "IfNotPresent"


def test_rate_limit_is_on_and_shared_through_the_redis_service():
    from limits import parse

    from digitrec.web.settings import ServeSettings

    env = env_of(find("Deployment", "digitrec"))
    parse(env["DIGITREC_RATE_LIMIT"])
    redis_service = find("Service", "digitrec-redis")
    port = redis_service["spec"]["ports"][0]["port"]
    assert env["DIGITREC_RATE_LIMIT_STORAGE"] == f"redis://digitrec-redis:{port}/0"
    settings = ServeSettings(rate_limit=env["DIGITREC_RATE_LIMIT"],
                             rate_limit_storage=env["DIGITREC_RATE_LIMIT_STORAGE"],
                             forwarded_allow_ips=env["FORWARDED_ALLOW_IPS"])
    settings.check()  # what `digitrec serve` checks before it starts
    assert env["FORWARDED_ALLOW_IPS"] != "*"  # "*" would let any client pick its own address
    redis = find("Deployment", "digitrec-redis")
    assert redis_service["spec"]["selector"].items() <= redis["spec"]["template"]["metadata"]["labels"].items()
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    assert {p["name"] for p in container["ports"]} == {redis_service["spec"]["ports"][0]["targetPort"]}
    # Only the web pods may reach Redis.
    policy = find("NetworkPolicy", "digitrec-redis")
    assert policy["spec"]["podSelector"]["matchLabels"] == redis["spec"]["selector"]["matchLabels"]
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    web = find("Deployment", "digitrec")["spec"]["template"]["metadata"]["labels"]
    assert peer["podSelector"]["matchLabels"] == web and rule["ports"][0]["port"] == port


def test_dockerfile_is_multistage_slim_nonroot_with_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM python:3\.11-slim", text, re.M) and len(re.findall(r"^FROM ", text, re.M)) == 2
    assert re.search(r"^ARG EXTRAS=serve,redis$", text, re.M)  # only the serving half (+ Redis client): no torch
    assert re.search(r"^\s+DIGITREC_RATE_LIMIT=\d+/second \\$", text, re.M)  # the rate limit on by default
    assert re.search(r"pip uninstall .*pip setuptools", text)  # no installer in the runtime
    assert re.search(r"^USER 10001$", text, re.M)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", text, re.M)
    assert "torch" not in re.sub(r"#.*", "", text).replace("find_spec('torch')", "")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[0] == "*" or "*" in ignored  # the build context is pyproject, README and src only


def test_procfile_honours_port():
    assert re.fullmatch(r"web: digitrec serve --host 0\.0\.0\.0 --port \$PORT.*\n", (ROOT / "Procfile").read_text())
