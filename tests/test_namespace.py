"""RestrictedNamespace: the chart's Namespace, Pod Security "restricted", and the namespaces it
refuses."""

from __future__ import annotations

import cdk8s
import pytest

from flask_backend import RestrictedNamespace
from flask_backend.namespace import POD_SECURITY_VERSION
from imports import k8s
from tests.support import KUBERNETES, synth, validate_strict


@pytest.mark.parametrize(
    "namespace", ["default", "kube-system", "kube-public", "kube-node-lease", "kube-flannel", None]
)
def test_system_and_missing_namespaces_are_refused_naming_the_value(namespace):
    chart = cdk8s.Chart(cdk8s.App(), "tier", namespace=namespace)

    with pytest.raises(ValueError, match="must be set and not one Kubernetes runs") as raised:
        RestrictedNamespace(chart)

    assert str(raised.value) == (
        "namespace (of chart 'tier') must be set and not one Kubernetes runs its own pods in "
        "(default, kube-system, kube-public, kube-node-lease or any kube-*), "
        f"got {namespace!r}"
    )
    assert list(chart.node.children) == []


def test_a_namespace_that_is_no_dns_label_is_refused():
    chart = cdk8s.Chart(cdk8s.App(), "tier", namespace="Back_End")

    with pytest.raises(ValueError, match="namespace must be a DNS label") as raised:
        RestrictedNamespace(chart)

    assert str(raised.value).endswith("got 'Back_End'")


def test_two_charts_of_one_app_cannot_both_emit_a_namespace():
    app = cdk8s.App()
    RestrictedNamespace(cdk8s.Chart(app, "one", namespace="shared"))
    two = cdk8s.Chart(app, "two", namespace="shared")

    with pytest.raises(ValueError, match="already emits") as raised:
        RestrictedNamespace(two)

    assert str(raised.value) == (
        "namespace 'shared' would emit Namespace 'shared' (cluster-scoped), which 'one' already "
        "emits in this App (kubectl would keep only one): pass a distinct namespace"
    )
    assert list(two.node.children) == []


def test_pod_security_is_pinned_to_the_oldest_supported_kubernetes():
    # The same rules on every supported cluster, and none tightened by an upgrade; a pin
    # newer than the cluster would mean its own (latest) standard there.
    (namespace,) = synth(RestrictedNamespace)

    for mode in ("enforce", "audit", "warn"):
        pinned = namespace["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}-version"]
        assert pinned == POD_SECURITY_VERSION == f"v{KUBERNETES['oldest']}"


@pytest.mark.parametrize("version", ["latest", "1.29", "v1.29; rm", 129])
def test_an_unpinned_pod_security_version_is_refused(version):
    chart = cdk8s.Chart(cdk8s.App(), "tier", namespace="backend")

    with pytest.raises(ValueError, match="pod_security_version") as raised:
        RestrictedNamespace(chart, pod_security_version=version)

    assert str(raised.value) == (
        f"pod_security_version must be a Kubernetes minor version like 'v1.29', got {version!r}"
    )


def test_the_yaml_is_what_the_generated_kube_namespace_gave_before():
    # What main.py emitted with imports/ (k8s.KubeNamespace), which the package cannot import.
    def generated(chart: cdk8s.Chart) -> None:
        labels = {
            f"pod-security.kubernetes.io/{mode}{suffix}": value
            for mode in ("enforce", "audit", "warn")
            for suffix, value in (("", "restricted"), ("-version", POD_SECURITY_VERSION))
        }
        namespace = k8s.KubeNamespace(
            chart, "namespace", metadata=k8s.ObjectMeta(name=chart.namespace, labels=labels)
        )
        namespace.add_json_patch(cdk8s.JsonPatch.remove("/metadata/namespace"))

    ours = synth(RestrictedNamespace)

    assert ours == synth(generated)
    assert "namespace" not in ours[0]["metadata"]
    validate_strict(ours)
