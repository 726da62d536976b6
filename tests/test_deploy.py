"""Deployment files: Kubernetes manifests validated offline against the Kubernetes JSON schemas (the
kubernetes-validate wheel ships them), and the Dockerfile/Procfile checked for what the platforms rely on.
The image itself is exercised by tests/test_serve_without_torch.py (same install, same CMD, no Docker)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30.0"


def manifests() -> list[dict]:
    docs = [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    assert {d["kind"] for d in docs} == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    return docs


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: d["kind"])
def test_manifest_is_valid_against_the_kubernetes_schema(doc):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # strict: unknown fields are errors too


def test_the_validator_catches_mistakes():
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


def test_deployment_probes_resources_and_security():
    spec = next(d for d in manifests() if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] and not c["securityContext"]["allowPrivilegeEscalation"]
    # A read-only root still needs somewhere to write: /tmp (metrics files) and /data (SQLite) are volumes.
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/tmp", "/data"}
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    service = next(d for d in manifests() if d["kind"] == "Service")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    hpa = next(d for d in manifests() if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "digitrec" and hpa["spec"]["minReplicas"] >= 2


def test_dockerfile_is_multistage_slim_nonroot_with_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM python:3\.11-slim", text, re.M) and len(re.findall(r"^FROM ", text, re.M)) == 2
    assert re.search(r"^ARG EXTRAS=serve$", text, re.M)  # only the serving half: no torch in the image
    assert re.search(r"^USER 10001$", text, re.M)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", text, re.M)
    assert "torch" not in re.sub(r"#.*", "", text).replace("find_spec('torch')", "")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[0] == "*" or "*" in ignored  # the build context is pyproject, README and src only


def test_procfile_honours_port():
    assert re.fullmatch(r"web: digitrec serve --host 0\.0\.0\.0 --port \$PORT.*\n", (ROOT / "Procfile").read_text())
