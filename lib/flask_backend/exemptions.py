"""Reasoned exemptions from the community's manifest checkers, on the objects they concern.

The backend passes checkov's and kube-score's default checks, but for options that a checker
flags: opt-outs (no CPU limit, one pod, a pull policy other than Always, ...) and one default
(egress left open, as only the user knows where the database is). Each puts an annotation on
exactly the objects it concerns that skips that check there, with the reason beside it, so
whoever runs the checker on the output with its defaults sees why, and every other check and
object is still judged in full:

- checkov: ``checkov.io/skip1: CKV_K8S_11=<reason>`` (checkov reads ``<check>=<reason>``);
- kube-score: ``kube-score/ignore: <check>,<check>`` (the checks it skips on this object,
  kube-score v1.20's scorecard/enabled.go) and, as kube-score has no field for a reason, one
  ``kube-score/ignore-reason.<check>: <reason>`` per check, which kube-score does not read.

tests/test_peer_linters.py proves on every output that each annotated check is still flagged
without its annotation, and that an annotation hides nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_backend import validation as v

if TYPE_CHECKING:
    from flask_backend.backend import FlaskBackend

# checkov's "CPU limits should be set".
CPU_LIMIT_CHECK = "CKV_K8S_11"
KUBE_SCORE_IGNORE = "kube-score/ignore"
KUBE_SCORE_REASON = "kube-score/ignore-reason."  # + the check's ID
# The kinds whose objects may carry exemptions: the pods' owners and the autoscaler.
KINDS = ("Deployment", "Job", "HorizontalPodAutoscaler")
NO_CPU_LIMIT = (
    "no CPU limit by choice (resources.cpu_limit_millicores is None); workers are sized from "
    "the CPU request"
)


def annotations_of(
    backend: FlaskBackend, kind: str, pod_spec: dict[str, Any] | None = None
) -> dict[str, str]:
    """The exemptions of one object the backend makes (kind in KINDS; with its pod_spec if it
    has pods)."""
    assert kind in KINDS, kind
    result = {}
    if kind != "HorizontalPodAutoscaler" and backend.resources.cpu_limit_millicores is None:
        # checkov splits the value at '=': the reason must hold none.
        result["checkov.io/skip1"] = f"{CPU_LIMIT_CHECK}={NO_CPU_LIMIT}"
    ignored = kube_score_ignores(backend, kind, pod_spec)
    if ignored:
        result[KUBE_SCORE_IGNORE] = ",".join(ignored)
        result |= {KUBE_SCORE_REASON + check: reason for check, reason in ignored.items()}
    return result


def kube_score_ignores(
    backend: FlaskBackend, kind: str, pod_spec: dict[str, Any] | None
) -> dict[str, str]:
    """kube-score's checks that the user's opt-outs fail on this object: ID -> reason."""
    reasons: dict[str, str] = {}
    scaling = backend.autoscaling
    if kind == "HorizontalPodAutoscaler":
        if scaling is not None and scaling.min_replicas < 2:
            reasons["horizontalpodautoscaler-replicas"] = (
                "fewer than 2 pods at times by choice (autoscaling.min_replicas is "
                f"{scaling.min_replicas})"
            )
        return reasons
    assert pod_spec is not None
    containers = [*pod_spec.get("initContainers", ()), *pod_spec["containers"]]
    policy = backend.image_pull_policy
    if policy != "Always":
        reasons["container-image-pull-policy"] = (
            f"pull policy {policy} by choice (image_pull_policy is {policy!r}); a node runs the "
            "image it has, e.g. one built locally for kind or minikube"
        )
    if backend.resources.cpu_limit_millicores is None:
        reasons["container-resources"] = f"{NO_CPU_LIMIT}; every other request and limit is set"
    if any(mutable_tag(c["image"]) for c in containers):
        reasons["container-image-tag"] = "image tag latest by choice (allow_latest_tag is True)"
    options = backend.network_policy_options
    if options is None:
        reasons["pod-networkpolicy"] = (
            "no NetworkPolicy by choice (network_policy is None); policies made elsewhere "
            "govern these pods"
        )
    elif options.egress is None:
        reasons["pod-networkpolicy"] = (
            "egress open (network_policy.egress is None, the default): the database may be "
            "anywhere (DATABASE_URL names it), so only the user can list the destinations, "
            "with NetworkPolicyOptions(egress=...); ingress is restricted"
        )
    if kind == "Job":
        return reasons
    # The Deployment: how many pods, how they are spread, how they are probed.
    if scaling is None and backend.replicas < 2:
        reasons["deployment-replicas"] = (
            f"fewer than 2 pods by choice (replicas is {backend.replicas}), and so no "
            "PodDisruptionBudget, which would block every node drain"
        )
    if scaling is not None and scaling.min_replicas < 2:
        reasons["deployment-has-poddisruptionbudget"] = (
            "no PodDisruptionBudget, as fewer than 2 pods at times by choice "
            f"(autoscaling.min_replicas is {scaling.min_replicas}): a budget would block every "
            "node drain while one pod runs"
        )
    if not backend.scheduling.spread and (scaling is not None or backend.replicas >= 2):
        reasons["deployment-has-host-podantiaffinity"] = (
            "pods not spread over nodes by choice (scheduling.spread is False)"
        )
    probes = backend.probes
    if probes.liveness_path == probes.readiness_path:
        reasons["pod-probes-identical"] = (
            f"one probe path by choice (probes.liveness_path and probes.readiness_path are "
            f"both {probes.liveness_path!r}), for an image that serves one health endpoint"
        )
    return reasons


def mutable_tag(image: str) -> bool:
    """Whether image names the tag latest (which allow_latest_tag admits) without a digest."""
    reference = v.image_reference("image", image, allow_latest=True)
    return reference.tag == "latest" and reference.digest is None
