"""Schema migrations: the Migrations options, the Job that runs them once per release, the
NetworkPolicy of its pods, and the init container that holds the app's pods until the schema is
at their head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_backend import exemptions, pod, shared
from flask_backend import validation as v

if TYPE_CHECKING:
    from flask_backend.backend import FlaskBackend

# The migration Job's container, and the init container that holds app pods until it is done.
MIGRATIONS_CONTAINER, MIGRATIONS_WAIT_CONTAINER = "migrate", "wait-for-migrations"
ARGO_SYNC_WAVE = "argocd.argoproj.io/sync-wave"


@dataclass(frozen=True)
class Migrations:
    """Schema migrations that run once per release, under plain ``kubectl apply`` and GitOps alike.

    A Job runs ``command`` in the app's image, with its config, secrets, ServiceAccount, Pod
    Security hardening and resources. Its name ends in a hash of everything it runs (image,
    command, pod spec) and of the config/secret checksum: a new release gets a new Job, and
    applying the same manifests again finds the finished Job and runs nothing (a Job's pod
    template is immutable, so a changed Job must have a new name anyway). With a NetworkPolicy,
    the migration pods get one of their own: no ingress, the app's egress.

    Every app pod gets an init container running ``wait_command``, which exits 0 once the
    schema is at the head the image expects: new pods never serve on an old schema, while the
    old pods keep serving until the new ones are ready. Write migrations expand/contract (add
    first, remove a release later) so the previous release keeps working on the new schema.

    Argo CD: the Deployment gets ``argocd.argoproj.io/sync-wave: "1"``, so Argo CD applies the
    Job with the other wave-0 objects (ConfigMap, Secret, ServiceAccount) and waits for it to
    complete before it touches the Deployment; a failed Job fails the sync and the running pods
    are left alone. Flux: no annotation is needed: it applies everything at once and the init
    containers hold the new pods; the hashed name never asks Flux to replace an immutable Job.
    """

    command: Sequence[str] = ("python", "-m", "backend_api.migrate", "upgrade")
    """Migrates the database to this image's head; must be idempotent and safe to run
    concurrently. Default: - the app image's ``python -m backend_api.migrate upgrade``."""
    wait_command: Sequence[str] = (
        "python",
        "-m",
        "backend_api.migrate",
        "wait",
        "--timeout",
        "300",
    )
    """The pods' init container: exits 0 once the schema is at this image's head, and gives up
    after a bounded time (the kubelet then restarts it with back-off, and the rollout stalls
    visibly). Default: - the app image's ``python -m backend_api.migrate wait --timeout 300``."""
    backoff_limit: int = 2
    """Retries of a failed migration pod (a restarting database, a lock timeout) before the
    Job fails. Each attempt runs in one transaction, so a failure leaves the schema as it was.
    Default: 2 (three attempts)."""
    active_deadline_seconds: int = 900
    """Wall time for the whole Job, retries included, after which its pod is stopped and the
    Job fails. Default: 900 (15 minutes; longer data migrations belong in the app)."""
    ttl_seconds_after_finished: int | None = 7 * 24 * 3600
    """Delete a finished Job (and its pod and logs) this long after it ends; None keeps it.
    When it is gone and the same manifests are applied again, the Job is created again and runs
    ``command`` once more, which finds the schema at head and changes nothing (Argo CD's
    self-heal or Flux's reconciliation do this on their own). Default: 604800 (7 days, time to
    read the logs of a release)."""

    def _validate(self) -> None:
        for name in ("command", "wait_command"):
            value = getattr(self, name)
            v.require_type(f"migrations.{name}", value, (tuple, list))
            if not value or not all(isinstance(a, str) for a in value) or not value[0]:
                raise ValueError(
                    f"migrations.{name} must be a non-empty sequence of strings with a program "
                    f"first, got {value!r}"
                )
            v.yaml_text(f"migrations.{name}", {str(i): a for i, a in enumerate(value)})
        v.int_in_range("migrations.backoff_limit", self.backoff_limit, 0, 100)
        v.int_in_range("migrations.active_deadline_seconds", self.active_deadline_seconds, 1)
        if self.ttl_seconds_after_finished is not None:
            v.int_in_range(
                "migrations.ttl_seconds_after_finished", self.ttl_seconds_after_finished, 0
            )


def wait_container(backend: FlaskBackend) -> dict[str, Any]:
    """The init container of every app pod: waits until the schema is at the image's head."""
    assert backend.migrations is not None
    return {
        **pod.app_container(backend, serving=False),
        "name": MIGRATIONS_WAIT_CONTAINER,
        "command": [*backend.migrations.wait_command],
    }


def job(backend: FlaskBackend) -> dict[str, Any] | None:
    """The migration Job: the app's pod, running the migration command once.

    Its name ends in a hash of everything it runs, so a new release gets a new Job and the
    same manifests applied again find the finished one (docs/migrations.md).
    """
    if backend.migrations is None:
        return None
    # Native sidecars (a database proxy) serve the migration too; the user's init containers
    # prepare the app and may need the schema the Job is about to make.
    migrate = {
        **pod.app_container(backend, serving=False),
        "name": MIGRATIONS_CONTAINER,
        "command": [*backend.migrations.command],
    }
    spec_of_pod = pod.pod_spec(backend, [migrate], pod.native_sidecars(backend), serving=False)
    digest = hashlib.sha256(
        json.dumps([backend.name, spec_of_pod, backend.config_checksum], sort_keys=True).encode()
    ).hexdigest()[:10]
    # A Job name is a label value on its pods: at most 63 characters.
    name = f"{backend.name[: 63 - len('-migrate-') - 10].rstrip('-')}-migrate-{digest}"
    # Not the app's selector: the Service, PodDisruptionBudget and NetworkPolicy must never
    # pick up a migration pod.
    labels = {
        **backend.labels,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "migrations",
    }
    spec: dict[str, Any] = {
        "backoffLimit": backend.migrations.backoff_limit,
        "activeDeadlineSeconds": backend.migrations.active_deadline_seconds,
        "template": {"metadata": {"labels": labels}, "spec": spec_of_pod},
    }
    if backend.migrations.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = backend.migrations.ttl_seconds_after_finished
    return shared.document(
        backend.identity,
        "batch/v1",
        "Job",
        name,
        labels=labels,
        annotations=exemptions.annotations_of(backend, "Job", spec_of_pod),
        spec=spec,
    )


def network_policy(
    backend: FlaskBackend, app_policy: dict[str, Any] | None, job: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The migration pods accept no traffic and may send what the app pods may."""
    if app_policy is None or job is None:
        return None
    egress = app_policy["spec"].get("egress")
    spec: dict[str, Any] = {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": backend.name,
                "app.kubernetes.io/component": "migrations",
            }
        },
        # Ingress listed with no rules: nothing may connect. No `ingress: []`: the API
        # server drops an empty list, so every `kubectl apply` would write it again.
        "policyTypes": ["Ingress", *(["Egress"] if egress is not None else [])],
    }
    if egress is not None:
        spec["egress"] = egress
    return shared.document(
        backend.identity,
        "networking.k8s.io/v1",
        "NetworkPolicy",
        f"{backend.name}-migrations",
        spec=spec,
    )
