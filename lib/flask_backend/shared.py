"""What every module of the backend reads, as Helm's `_helpers.tpl` is for a chart: the name,
the recommended labels, the pod selector, the namespace, and how an object is emitted.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cdk8s
import jsii
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
    chart: ChartFacts

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


def emit(
    scope: Construct, id: str, identity: Identity, document: dict[str, Any]
) -> cdk8s.ApiObject:
    """The object of `document`, as a child of `scope` with the given id."""
    return _Manifest(scope, id, document, identity.chart)


def emit_if(
    scope: Construct, id: str, identity: Identity, document: dict[str, Any] | None
) -> cdk8s.ApiObject | None:
    return None if document is None else emit(scope, id, identity, document)


class _Manifest(cdk8s.ApiObject):
    """One Kubernetes object whose JSON is plain Python data, built once.

    Every call into cdk8s is a round trip to its Node process (BENCHMARKS.md: most of a synth's
    time), so the backend builds its objects in Python and hands each to cdk8s whole: this
    constructor is one round trip, and `to_json`, which the synthesis calls back into Python,
    the other. Escape hatches still land: `add_json_patch` operations are applied to this JSON,
    and once `metadata` has been read (to add a label or an annotation), the metadata written is
    cdk8s's own copy, with those changes. `to_json()` returns the object's own data: read it,
    do not change it (patch the object instead).
    """

    def __init__(
        self, scope: Construct, id: str, document: dict[str, Any], facts: ChartFacts
    ) -> None:
        metadata = document["metadata"]
        given = {"name": metadata["name"], "labels": metadata["labels"]}
        if metadata.get("annotations"):
            given["annotations"] = metadata["annotations"]
        # What cdk8s.ApiObject.__init__ does after building an ApiObjectProps and type-checking
        # each argument with typeguard, which cost about as much as the round trip itself: this
        # data is plain, and validated already.
        jsii.create(
            type(self),
            self,
            [
                scope,
                id,
                {"apiVersion": document["apiVersion"], "kind": document["kind"], "metadata": given},
            ],
        )
        # What cdk8s's metadata writes, sorted as it sorts: the chart's labels under the
        # object's, the chart's namespace.
        written = {
            "annotations": dict(sorted(metadata.get("annotations", {}).items())),
            "labels": dict(sorted({**facts.labels, **metadata["labels"]}.items())),
            "name": metadata["name"],
            "namespace": facts.namespace,
        }
        self._document = {**document, "metadata": {k: v for k, v in written.items() if v}}
        self._patches: list[cdk8s.JsonPatch] = []
        self._metadata_changed = False

    @property
    def metadata(self) -> cdk8s.ApiObjectMetadataDefinition:
        # Whoever asks may change it: from now on, write cdk8s's copy.
        self._metadata_changed = True
        return super().metadata

    def add_json_patch(self, *ops: cdk8s.JsonPatch) -> None:
        self._patches.extend(ops)

    def to_json(self) -> Any:
        document = self._document
        if self._metadata_changed:
            document = {**document, "metadata": super().metadata.to_json()}
        if self._patches:
            document = cdk8s.JsonPatch.apply(document, *self._patches)
        return document


@dataclass(frozen=True)
class ChartFacts:
    app: Any
    namespace: str | None
    labels: dict[str, str]


# Read once per chart: each read is a round trip to Node.
_CHART_FACTS: weakref.WeakKeyDictionary[cdk8s.Chart, ChartFacts] = weakref.WeakKeyDictionary()


def chart_facts(scope: Construct) -> tuple[cdk8s.Chart, ChartFacts]:
    # (A chart passed as the scope is its own chart: no round trip to Node to find it.)
    chart = scope if isinstance(scope, cdk8s.Chart) else cdk8s.Chart.of(scope)
    facts = _CHART_FACTS.get(chart)
    if facts is None:
        facts = _CHART_FACTS[chart] = ChartFacts(
            chart.node.root, chart.namespace, dict(chart.labels or {})
        )
    return chart, facts
