"""RestrictedNamespace: a chart's own Namespace, enforcing Pod Security "restricted"."""

from __future__ import annotations

import re

import cdk8s

from flask_backend.validation import claim_objects, dns_label

# The oldest Kubernetes minor the package supports (README "Kubernetes versions"; a test holds
# it equal to tools/kubernetes.toml): every supported cluster applies the same rules, and
# upgrading one never tightens them under running pods (1.34's standard forbids probes'
# `host`, for one). A cluster older than the pin would apply its own, older standard.
POD_SECURITY_VERSION = "v1.29"
# Namespaces Kubernetes creates and runs its own pods in ("kube-" is reserved for it): labelling
# one "enforce: restricted" would stop its pods from being recreated.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SYSTEM_NAMESPACES_TEXT = f"{', '.join(SYSTEM_NAMESPACES)} or any kube-*"


def is_system_namespace(namespace: str) -> bool:
    return namespace in SYSTEM_NAMESPACES or namespace.startswith("kube-")


class RestrictedNamespace(cdk8s.ApiObject):
    """The Namespace of `chart` (named `chart.namespace`), enforcing, auditing and warning on
    Pod Security "restricted", the standard's versions pinned (`pod_security_version`).

    Create it first in the chart, so that `kubectl apply` creates it before what lives in it:

        chart = cdk8s.Chart(app, "backend", namespace="backend")
        RestrictedNamespace(chart)
        FlaskBackend(chart, "api", image=...)

    Refuses (ValueError) a chart without a namespace, a system namespace (default, kube-*:
    enforcing "restricted" there would stop Kubernetes' own pods from being recreated), and a
    second Namespace of the same name in one App (two charts in one namespace would emit it
    twice: create it in one of them).

    Args:
        chart: the chart whose objects live in the namespace.
        id: the construct id. Default: "namespace".
        pod_security_version: the version of the Pod Security Standards to enforce, pinned so
            that a cluster upgrade never tightens the rules under running pods.
            Default: "v1.29", the oldest Kubernetes version the package supports: the same
            rules on every supported cluster.
    """

    def __init__(
        self,
        chart: cdk8s.Chart,
        id: str = "namespace",
        *,
        pod_security_version: str = POD_SECURITY_VERSION,
    ) -> None:
        name = chart.namespace
        if name is None or is_system_namespace(name):
            raise ValueError(
                f"namespace (of chart {chart.node.id!r}) must be set and not one Kubernetes runs "
                f"its own pods in ({SYSTEM_NAMESPACES_TEXT}), got {name!r}"
            )
        dns_label("namespace", name)
        if not isinstance(pod_security_version, str) or not re.fullmatch(
            r"v1\.[0-9]+", pod_security_version
        ):
            raise ValueError(
                "pod_security_version must be a Kubernetes minor version like "
                f"{POD_SECURITY_VERSION!r}, got {pod_security_version!r}"
            )
        root = chart.node.root
        claim_objects(root, chart, [("Namespace", name, None)], argument="namespace", value=name)
        labels = {
            f"pod-security.kubernetes.io/{mode}{suffix}": value
            for mode in ("enforce", "audit", "warn")
            for suffix, value in (("", "restricted"), ("-version", pod_security_version))
        }
        super().__init__(
            chart,
            id,
            api_version="v1",
            kind="Namespace",
            metadata=cdk8s.ApiObjectMetadata(name=name, labels=labels),
        )
        # A Namespace is cluster-scoped; the chart would otherwise give it metadata.namespace.
        self.add_json_patch(cdk8s.JsonPatch.remove("/metadata/namespace"))
