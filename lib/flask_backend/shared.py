"""What every module of the backend reads, as Helm's `_helpers.tpl` is for a chart: the name,
the recommended labels, the pod selector, the namespace, and how an object is emitted.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from flask_backend import validation as v


@dataclass(frozen=True)
class Identity:
    """The facts every object of one backend shares."""

    name: str
    """Name of every object (and prefix of the ConfigMap and Secret names)."""
    labels: dict[str, str]
    """The recommended app.kubernetes.io/* labels, on every object and the pod template."""
    namespace: str | None
    """The chart's namespace (None: the one `kubectl apply` uses)."""

    @property
    def selector_labels(self) -> dict[str, str]:
        """name and instance only: moving the construct or changing the image never touches an
        immutable selector."""
        return {k: self.labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def backend_name(id: str, name: str | None) -> str:
    v.require_type("id", id, str)
    if not id:
        raise ValueError("id must not be empty, got ''")
    resolved = v.dns_label("name", id if name is None else name, rfc1035=True)
    if resolved == "default":
        # Every namespace has a ServiceAccount "default", which other pods run as.
        raise ValueError(
            "name must not be 'default': the backend's ServiceAccount would overwrite the "
            "namespace's own, got 'default'"
        )
    return resolved


def recommended_labels(
    name: str,
    image: v.ImageReference,
    version: str | None,
    component: str,
    part_of: str | None,
) -> dict[str, str]:
    if version is None:
        # A tag may be 128 characters and end in '_', '.' or '-'; a label value may not.
        # Trim it as Helm charts do, so every valid image gets a valid label.
        tag = image.tag[:63].strip("_.-") if image.tag else None
        version = tag if tag is not None else (image.digest or "").partition(":")[2][:12]
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/version": v.label_value("version", version),
        "app.kubernetes.io/component": v.label_value("component", component),
        "app.kubernetes.io/part-of": v.label_value("part_of", name if part_of is None else part_of),
        "app.kubernetes.io/managed-by": "cdk8s",
    }


def document(
    identity: Identity,
    api_version: str,
    kind: str,
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    **body: Any,
) -> dict[str, Any]:
    """One Kubernetes object as plain data, labelled as the backend's (unless `labels`)."""
    metadata: dict[str, Any] = {"name": name, "labels": dict(labels or identity.labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def emit(scope: Construct, id: str, document: dict[str, Any]) -> cdk8s.ApiObject:
    """`document` as an ordinary cdk8s.ApiObject, a child of `scope` with the given id.

    cdk8s writes the metadata (the chart's labels under the object's, the chart's namespace,
    keys sorted); the rest of the object is added as JSON patches, as cdk8s documents for
    fields ApiObjectProps does not name, so its keys keep the order written here. Escape hatches
    (`ApiObject.of(child).add_json_patch(...)`, `.metadata.add_label(...)`) apply after them.

    Not the typed classes of imports/k8s: lib/ never imports imports/ (a pip user does not have
    it), and the objects are validated here and in the tests against the Kubernetes schema.
    """
    metadata = document["metadata"]
    api_object = cdk8s.ApiObject(
        scope,
        id,
        api_version=document["apiVersion"],
        kind=document["kind"],
        metadata=cdk8s.ApiObjectMetadata(
            name=metadata["name"],
            labels=metadata["labels"],
            annotations=metadata.get("annotations") or None,
        ),
    )
    api_object.add_json_patch(
        *(
            cdk8s.JsonPatch.add(f"/{key}", value)
            for key, value in document.items()
            if key not in ("apiVersion", "kind", "metadata")
        )
    )
    return api_object


def emit_if(scope: Construct, id: str, document: dict[str, Any] | None) -> cdk8s.ApiObject | None:
    return None if document is None else emit(scope, id, document)


@dataclass(frozen=True)
class ChartFacts:
    app: Any
    namespace: str | None


# Read once per chart: each read is a round trip to Node.
_CHART_FACTS: weakref.WeakKeyDictionary[cdk8s.Chart, ChartFacts] = weakref.WeakKeyDictionary()


def chart_facts(scope: Construct) -> tuple[cdk8s.Chart, ChartFacts]:
    # (A chart passed as the scope is its own chart: no round trip to Node to find it.)
    chart = scope if isinstance(scope, cdk8s.Chart) else cdk8s.Chart.of(scope)
    facts = _CHART_FACTS.get(chart)
    if facts is None:
        facts = _CHART_FACTS[chart] = ChartFacts(chart.node.root, chart.namespace)
    return chart, facts
