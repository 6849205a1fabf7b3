"""The workload: the Deployment that runs the pods, the PodDisruptionBudget that keeps enough of
them through node drains, and the optional HorizontalPodAutoscaler (Autoscaling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_backend import exemptions, migrations, pod, shared
from flask_backend import validation as v
from flask_backend.config import CHECKSUM_ANNOTATION

if TYPE_CHECKING:
    from flask_backend.backend import FlaskBackend


@dataclass(frozen=True)
class Autoscaling:
    """A HorizontalPodAutoscaler (autoscaling/v2) on CPU; the Deployment leaves replicas to it."""

    min_replicas: int = 2
    """Fewest pods the autoscaler keeps. Default: 2 (keeps the PodDisruptionBudget meaningful)."""
    max_replicas: int = 10
    """Most pods the autoscaler starts. Default: 10."""
    cpu_utilization_percent: int = 70
    """Target average CPU use, as a share of the CPU request. Default: 70."""

    def _validate(self) -> None:
        v.int_in_range("autoscaling.min_replicas", self.min_replicas, 1)
        v.int_in_range("autoscaling.max_replicas", self.max_replicas, 1)
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"autoscaling.max_replicas must be >= autoscaling.min_replicas "
                f"({self.min_replicas}), got {self.max_replicas}"
            )
        v.int_in_range("autoscaling.cpu_utilization_percent", self.cpu_utilization_percent, 1, 1000)


def deployment(backend: FlaskBackend, job: dict[str, Any] | None) -> dict[str, Any]:
    init_containers = pod.native_sidecars(backend)
    annotations: dict[str, str] = {}
    if job is not None:
        # After the native sidecars (a database proxy it may need), before the user's init
        # containers (which may then use the schema).
        init_containers.append(migrations.wait_container(backend))
        annotations[migrations.ARGO_SYNC_WAVE] = "1"  # after the Job, which stays in wave 0
    init_containers += backend.init_containers
    containers = [pod.app_container(backend, serving=True)]
    if not backend.native_sidecars:
        containers += backend.sidecars
    spec: dict[str, Any] = {
        "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": backend.selector_labels},
        # Never below the desired count during a rollout; a quarter more pods while it runs.
        "strategy": {
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            "type": "RollingUpdate",
        },
        "template": {
            "metadata": {
                "annotations": {
                    CHECKSUM_ANNOTATION: backend.config_checksum,
                    **backend.pod_annotations,
                },
                # Not the construct path (cdk8s-plus's default): moving the construct must
                # not change the pod template and roll every pod.
                "labels": backend.labels,
            },
            "spec": pod.pod_spec(backend, containers, init_containers, serving=True),
        },
    }
    if backend.autoscaling is None:
        spec = {"replicas": backend.replicas, **spec}
    annotations |= exemptions.annotations_of(backend, "Deployment", spec["template"]["spec"])
    return shared.document(
        backend.identity, "apps/v1", "Deployment", backend.name, annotations=annotations, spec=spec
    )


def pod_disruption_budget(backend: FlaskBackend) -> dict[str, Any] | None:
    minimum = backend.autoscaling.min_replicas if backend.autoscaling else backend.replicas
    if minimum < 2:
        return None  # with one pod, any budget would block node drains
    spec = {
        "maxUnavailable": 1,
        "selector": {"matchLabels": backend.selector_labels},
        # Readiness checks the database: in a database outage every pod is Running but not
        # Ready, and a budget counting them would let no node drain. (Beta, on by default, from
        # Kubernetes 1.27; GA in 1.31.)
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    return shared.document(
        backend.identity, "policy/v1", "PodDisruptionBudget", backend.name, spec=spec
    )


def horizontal_pod_autoscaler(backend: FlaskBackend) -> dict[str, Any] | None:
    scaling = backend.autoscaling
    if scaling is None:
        return None
    # cdk8s-plus's scaling behaviour: up by 4 pods or 200% a minute, whichever is more; down
    # by at most min_replicas pods per 5 minutes, after 5 minutes of lower load.
    behavior = {
        "scaleDown": {
            "policies": [{"periodSeconds": 300, "type": "Pods", "value": scaling.min_replicas}],
            "selectPolicy": "Max",
            "stabilizationWindowSeconds": 300,
        },
        "scaleUp": {
            "policies": [
                {"periodSeconds": 60, "type": "Pods", "value": 4},
                {"periodSeconds": 60, "type": "Percent", "value": 200},
            ],
            "selectPolicy": "Max",
            "stabilizationWindowSeconds": 0,
        },
    }
    target = {"averageUtilization": scaling.cpu_utilization_percent, "type": "Utilization"}
    spec = {
        "behavior": behavior,
        "maxReplicas": scaling.max_replicas,
        "metrics": [{"resource": {"name": "cpu", "target": target}, "type": "Resource"}],
        "minReplicas": scaling.min_replicas,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": backend.name},
    }
    return shared.document(
        backend.identity,
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        backend.name,
        annotations=exemptions.annotations_of(backend, "HorizontalPodAutoscaler"),
        spec=spec,
    )
