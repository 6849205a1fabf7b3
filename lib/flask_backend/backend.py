"""FlaskBackend: a Flask API on Kubernetes, production-safe by default.

Read top to bottom: the option groups (small frozen dataclasses), then the construct: its props and
their defaults, the validation that runs before any object exists, the children, and the wiring.
Each default answers one production failure: Pod Security "restricted", graceful shutdown,
config-change rollouts, the checkov rules users get flagged on (README: "What the defaults
protect you from").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cdk8s
import jsii
from constructs import Construct

from flask_backend import validation as v

if TYPE_CHECKING:
    # Loaded only where a user's volumes are handled: whoever made them loaded it already, and
    # a synth without volumes (main.py's) is spared loading its jsii assembly (~0.2 s).
    import cdk8s_plus_27 as kplus

# The contract with the app image (app/Dockerfile, app/gunicorn.conf.py); tests hold both equal.
DEFAULT_PORT = 8000
RUN_AS_USER = 10001
RUN_AS_GROUP = 10001
SECRETS_DIR = "/run/secrets"  # one read-only file per secret key; the app reads SECRETS_DIR
TMP_DIR = "/tmp"  # noqa: S108 - the only writable path: a memory-backed emptyDir (gunicorn heartbeat)
PORT_NAME = "http"
# Prometheus metrics (app/backend_api/metrics.py): served by gunicorn's master on a port of their
# own, from files the workers write to a memory-backed emptyDir.
METRICS_PORT_NAME, METRICS_PATH, METRICS_DIR = "metrics", "/metrics", "/run/metrics"
DEFAULT_METRICS_PORT = 9102
CHECKSUM_ANNOTATION = "checksum/config"  # on the pod template: config changes roll the pods
# Environment variables and volumes the backend itself sets; user input must not shadow them.
RESERVED_ENV = (
    "PORT",
    "GRACEFUL_TIMEOUT",
    "SECRETS_DIR",
    "CPU_LIMIT_MILLICORES",
    "METRICS_PORT",
    "PROMETHEUS_MULTIPROC_DIR",
    "CPU_REQUEST_MILLICORES",
    "MAX_REQUEST_BYTES",
)
TMP_VOLUME, SECRETS_VOLUME, METRICS_VOLUME = "tmp", "secrets", "metrics"
RESERVED_VOLUMES = (TMP_VOLUME, SECRETS_VOLUME, METRICS_VOLUME)
# The secret that keys checksum/config (see _config_checksum): Flask's session-signing key, which
# must be long and random anyway. 32 characters: 128 bits as hex, more in any richer alphabet.
CHECKSUM_KEY_SECRET = "SECRET_KEY"  # noqa: S105 - the name of a key, not a value
MIN_CHECKSUM_KEY_LENGTH = 32
# Requests larger than this are refused by the ingress controller, gunicorn and Flask alike: 1 MiB,
# ingress-nginx's own default, so the edge and the app agree out of the box.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
BODY_SIZE_ANNOTATION = "nginx.ingress.kubernetes.io/proxy-body-size"
# checkov's "CPU limits should be set": skipped, on this Deployment only, when the user opts out
# of a CPU limit (resources.cpu_limit_millicores=None), with the reason in the manifest.
CPU_LIMIT_CHECK = "CKV_K8S_11"

# The migration Job's container, and the init container that holds app pods until it is done.
MIGRATIONS_CONTAINER, MIGRATIONS_WAIT_CONTAINER = "migrate", "wait-for-migrations"
ARGO_SYNC_WAVE = "argocd.argoproj.io/sync-wave"

IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


@dataclass(frozen=True)
class Resources:
    """Requests and limits of the app container, measured on the real app under gunicorn.

    The CPU limit sets gunicorn's worker count (passed in through the Downward API), so the app
    never sizes itself from the node's cores; without a CPU limit, the CPU request does.
    """

    cpu_request_millicores: int = 250
    """CPU the scheduler reserves; sizes gunicorn's workers when there is no CPU limit.
    Default: 250 (a quarter core)."""
    cpu_limit_millicores: int | None = 1000
    """CPU ceiling; gunicorn derives its workers from it. None: no CPU limit (for platforms that
    forbid them; the pod may then burst into idle CPU, and checkov's CKV_K8S_11 is skipped on
    this Deployment, with the reason in an annotation). Default: 1000 (one core)."""
    memory_request_mib: int = 256
    """Memory the scheduler reserves. Default: 256, equal to the limit (no overcommit)."""
    memory_limit_mib: int = 256
    """Memory ceiling, including the /tmp emptyDir, which lives in memory. Default: 256."""
    ephemeral_storage_request_gib: int = 1
    """Node disk for container logs (the root filesystem is read-only); whole GiB, as
    cdk8s-plus-27 requires. Default: 1."""
    ephemeral_storage_limit_gib: int = 1
    """Node disk ceiling; the pod is evicted beyond it. Default: 1."""
    tmp_size_mib: int = 16
    """Size limit of the memory-backed /tmp emptyDir. Default: 16."""

    def _validate(self) -> None:
        pairs = (
            ("cpu", self.cpu_request_millicores, self.cpu_limit_millicores, 10),
            ("memory", self.memory_request_mib, self.memory_limit_mib, 16),
            (
                "ephemeral_storage",
                self.ephemeral_storage_request_gib,
                self.ephemeral_storage_limit_gib,
                1,
            ),
        )
        for what, request, limit, low in pairs:
            unit = {"cpu": "millicores", "memory": "mib", "ephemeral_storage": "gib"}[what]
            v.int_in_range(f"resources.{what}_request_{unit}", request, low)
            if limit is None and what == "cpu":
                continue
            limit = v.int_in_range(f"resources.{what}_limit_{unit}", limit, low)
            if request > limit:
                raise ValueError(
                    f"resources.{what}_request_{unit} must be <= resources.{what}_limit_{unit} "
                    f"({limit}), got {request}"
                )
        v.int_in_range("resources.tmp_size_mib", self.tmp_size_mib, 1)
        if self.tmp_size_mib >= self.memory_limit_mib:
            raise ValueError(
                "resources.tmp_size_mib must be below resources.memory_limit_mib "
                f"({self.memory_limit_mib}): /tmp is memory-backed, got {self.tmp_size_mib}"
            )


@dataclass(frozen=True)
class Probes:
    """The app's health endpoints and how often the kubelet asks them.

    Three distinct paths: liveness restarts a wedged process and never checks dependencies;
    readiness takes the pod out of the Service (it may check the database); startup covers a slow
    boot so liveness does not kill it.
    """

    startup_path: str = "/startupz"
    """Answers 200 once the app has booted. Default: "/startupz"."""
    readiness_path: str = "/readyz"
    """Answers 200 while the pod can serve (checks the database). Default: "/readyz"."""
    liveness_path: str = "/livez"
    """Answers 200 while the process is alive; never checks dependencies. Default: "/livez"."""
    period_seconds: int = 10
    """Readiness and liveness period. Default: 10."""
    timeout_seconds: int = 2
    """Per-probe timeout. Default: 2 (the readiness database check itself gives up after 0.5)."""
    startup_failure_threshold: int = 30
    """Startup probes (every 2 s) before the container is restarted. Default: 30 (60 s to boot)."""

    def _validate(self) -> None:
        paths = (self.startup_path, self.readiness_path, self.liveness_path)
        for name, path in zip(
            ("startup_path", "readiness_path", "liveness_path"), paths, strict=True
        ):
            v.url_path(f"probes.{name}", path)
        if len(set(paths)) != 3:
            raise ValueError(
                f"probes paths must be distinct (scanners flag shared endpoints), got {paths!r}"
            )
        v.int_in_range("probes.period_seconds", self.period_seconds, 1, 3600)
        v.int_in_range("probes.timeout_seconds", self.timeout_seconds, 1, 3600)
        v.int_in_range("probes.startup_failure_threshold", self.startup_failure_threshold, 1, 1000)


@dataclass(frozen=True)
class Shutdown:
    """Zero-downtime termination, from numbers kept in one place.

    On termination the kubelet runs the preStop sleep (so endpoints drain before the app stops
    accepting), then sends SIGTERM; gunicorn finishes in-flight requests for graceful_timeout.
    terminationGracePeriodSeconds = pre_stop_sleep + graceful_timeout + margin covers all three.
    """

    pre_stop_sleep_seconds: int = 10
    """Wait before SIGTERM so kube-proxy and ingresses stop sending traffic. Default: 10."""
    graceful_timeout_seconds: int = 25
    """gunicorn's graceful_timeout, passed to the app as GRACEFUL_TIMEOUT. Default: 25."""
    margin_seconds: int = 5
    """Slack for the process to exit after its workers. Default: 5."""

    @property
    def termination_grace_period_seconds(self) -> int:
        return self.pre_stop_sleep_seconds + self.graceful_timeout_seconds + self.margin_seconds

    def _validate(self) -> None:
        v.int_in_range("shutdown.pre_stop_sleep_seconds", self.pre_stop_sleep_seconds, 0, 300)
        v.int_in_range("shutdown.graceful_timeout_seconds", self.graceful_timeout_seconds, 1, 3600)
        v.int_in_range("shutdown.margin_seconds", self.margin_seconds, 1, 300)


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


@dataclass(frozen=True)
class EgressRule:
    """Allow traffic to pods in one namespace on some TCP ports, e.g. the database tier."""

    namespace: str
    """Namespace of the destination (matched by its kubernetes.io/metadata.name label)."""
    ports: tuple[int, ...]
    """Destination TCP ports, e.g. (5432,)."""
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Narrow to pods with these labels. Default: - every pod in the namespace."""


@dataclass(frozen=True)
class NetworkPolicyOptions:
    """Which traffic the backend's NetworkPolicy admits. Defaults never break the default setup."""

    ingress_namespaces: tuple[str, ...] = ()
    """Namespaces allowed to reach the http port. Default: - any source may reach the http port
    (and only that port)."""
    egress: tuple[EgressRule, ...] | None = None
    """When set, egress is denied except DNS and these rules. Default: - egress unrestricted."""

    def _validate(self) -> None:
        # A bare string is iterable too: ingress_namespaces="web" would admit "w", "e" and "b".
        v.require_type("network_policy.ingress_namespaces", self.ingress_namespaces, (tuple, list))
        for i, namespace in enumerate(self.ingress_namespaces):
            v.dns_label(f"network_policy.ingress_namespaces[{i}]", namespace)
        if self.egress is not None:
            v.require_type("network_policy.egress", self.egress, (tuple, list))
        for i, rule in enumerate(self.egress or ()):
            v.require_type(f"network_policy.egress[{i}]", rule, EgressRule)
            v.dns_label(f"network_policy.egress[{i}].namespace", rule.namespace)
            v.require_type(f"network_policy.egress[{i}].ports", rule.ports, (tuple, list))
            if not rule.ports:
                raise ValueError(f"network_policy.egress[{i}].ports must not be empty, got ()")
            for port in rule.ports:
                v.int_in_range(f"network_policy.egress[{i}].ports", port, 1, 65535)
            # Label keys follow the annotation-key rules (optional DNS prefix, qualified name).
            for key, value in v.annotation_map(
                f"network_policy.egress[{i}].pod_labels", rule.pod_labels
            ).items():
                v.label_value(f"network_policy.egress[{i}].pod_labels[{key!r}]", value)


@dataclass(frozen=True)
class Scheduling:
    """Where the pods may run."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    """Node labels a node must have to run the pods (at most 256). Default: - any node."""
    tolerations: Sequence[Mapping[str, Any]] = ()
    """Kubernetes tolerations (a list or tuple of dicts), checked as the API server checks them.
    Default: - none."""
    spread: bool = True
    """Spread replicas across nodes and zones (topologySpreadConstraints, best effort, plus a
    preferred pod anti-affinity). Default: True."""

    def _validate(self) -> None:
        node_selector = v.annotation_map("scheduling.node_selector", self.node_selector)
        v.pod_map_entries("scheduling.node_selector", node_selector)
        for key, value in node_selector.items():
            v.label_value(f"scheduling.node_selector[{key!r}]", value)
        # A list or tuple, read twice (here and in the pod spec): a generator would be empty the
        # second time, and a toleration silently lost.
        v.require_type("scheduling.tolerations", self.tolerations, (tuple, list))
        for i, toleration in enumerate(self.tolerations):
            v.toleration(f"scheduling.tolerations[{i}]", toleration)
        v.require_type("scheduling.spread", self.spread, bool)


@dataclass(frozen=True)
class Metrics:
    """Prometheus metrics on a port of their own, true under gunicorn (sums over every worker,
    never reset by a worker restart; README: "Metrics").

    The container gets a ``metrics`` port and a memory-backed emptyDir for the workers' metric
    files; the Service gets a ``metrics`` port; the NetworkPolicy admits ``scrape_namespaces``
    to that port only. On by default: a scrape costs the API nothing (the master serves it) and
    the request path under 5% (BENCHMARKS.md), and a pod's workers restarting inside it is
    invisible to Kubernetes without it.
    """

    port: int = DEFAULT_METRICS_PORT
    """Port /metrics is served on (passed to the app as METRICS_PORT). Default: 9102."""
    scrape_namespaces: tuple[str, ...] = ("monitoring",)
    """Namespaces whose pods may reach the metrics port (with a NetworkPolicy); empty admits
    none. Default: - ("monitoring",), where kube-prometheus-stack usually runs."""
    service_monitor: bool = False
    """Add a ServiceMonitor (monitoring.coreos.com/v1) for the Prometheus Operator; its CRD
    must be installed first. Default: False (plain ``kubectl apply`` works on any cluster)."""
    service_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on the ServiceMonitor, to match a Prometheus's ``serviceMonitorSelector``
    (kube-prometheus-stack: ``{"release": "<its release name>"}``). Default: - none."""
    scrape_interval_seconds: int = 30
    """How often Prometheus scrapes (the ServiceMonitor's interval). Default: 30."""
    dir_size_mib: int = 16
    """Size limit of the emptyDir holding the metric files (a few KiB per worker started since
    the pod did; counted in the memory limit). Default: 16."""

    def _validate(self) -> None:
        v.int_in_range("metrics.port", self.port, 1, 65535)
        v.require_type("metrics.scrape_namespaces", self.scrape_namespaces, (tuple, list))
        for i, namespace in enumerate(self.scrape_namespaces):
            v.dns_label(f"metrics.scrape_namespaces[{i}]", namespace)
        v.require_type("metrics.service_monitor", self.service_monitor, bool)
        for key, value in v.annotation_map(
            "metrics.service_monitor_labels", self.service_monitor_labels
        ).items():
            v.label_value(f"metrics.service_monitor_labels[{key!r}]", value)
        v.int_in_range("metrics.scrape_interval_seconds", self.scrape_interval_seconds, 1, 3600)
        v.int_in_range("metrics.dir_size_mib", self.dir_size_mib, 1, 1024)


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


@dataclass(frozen=True)
class Ingress:
    """An Ingress (networking.k8s.io/v1) routing ``host`` and ``path`` to the Service's http port.

    It carries ingress-nginx's body-size annotation from ``max_request_bytes``, so the edge
    refuses what the app would refuse anyway.
    """

    host: str
    """Host name clients use, e.g. "api.example.com" ("*.example.com" for a wildcard)."""
    path: str = "/"
    """Path prefix routed to the backend (pathType Prefix). Default: "/"."""
    tls_secret: str | None = None
    """Name of a kubernetes.io/tls Secret (e.g. made by cert-manager) for ``host``.
    Default: - plain HTTP."""
    class_name: str | None = None
    """IngressClass to use. Default: - the cluster's default IngressClass."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """Extra annotations for the controller (not the body size: see ``max_request_bytes``).
    Default: - none."""
    controller_namespace: str = "ingress-nginx"
    """Namespace of the ingress controller's pods, which the NetworkPolicy then admits (when it
    admits only some namespaces). Default: "ingress-nginx" (ingress-nginx's install manifests)."""

    def _validate(self) -> None:
        v.host_name("ingress.host", self.host)
        v.route_path("ingress.path", self.path)
        if self.tls_secret is not None:
            v.dns_subdomain("ingress.tls_secret", self.tls_secret)
        if self.class_name is not None:
            v.dns_subdomain("ingress.class_name", self.class_name)
        annotations = v.annotation_map("ingress.annotations", self.annotations)
        v.yaml_text("ingress.annotations", annotations)
        if BODY_SIZE_ANNOTATION in annotations:
            raise ValueError(
                f"ingress.annotations must not set {BODY_SIZE_ANNOTATION!r}: the backend sets it "
                "from max_request_bytes, which also reaches gunicorn and Flask"
            )
        v.dns_label("ingress.controller_namespace", self.controller_namespace)


@dataclass(frozen=True)
class GatewayRef:
    """A Gateway (Gateway API) an HTTPRoute attaches to."""

    name: str
    """Name of the Gateway."""
    namespace: str | None = None
    """Namespace of the Gateway. Default: - the route's own namespace."""
    section_name: str | None = None
    """One listener of the Gateway, by name. Default: - every listener that allows the route."""


@dataclass(frozen=True)
class HttpRoute:
    """An HTTPRoute (gateway.networking.k8s.io/v1) sending ``hostnames`` and ``path`` to the
    Service. The Gateway API has no named ports: the route names the Service's port number."""

    parent_refs: tuple[GatewayRef, ...]
    """The Gateways to attach to (at least one, at most 32)."""
    hostnames: tuple[str, ...] = ()
    """Host names to match. Default: - the hosts of the Gateway's listeners."""
    path: str = "/"
    """Path prefix routed to the backend (PathPrefix). Default: "/"."""
    controller_namespace: str | None = None
    """Namespace of the Gateway's proxy pods, which the NetworkPolicy then admits (when it
    admits only some namespaces). Default: - the namespace of each parent Gateway, where Istio,
    NGINX Gateway Fabric and Envoy Gateway's Gateway-namespace mode run them."""

    def _validate(self, route_namespace: str | None) -> tuple[str, ...]:
        """Check the fields; return the namespaces whose proxies must reach the pods."""
        v.require_type("http_route.parent_refs", self.parent_refs, (tuple, list))
        if not 1 <= len(self.parent_refs) <= 32:
            raise ValueError(
                f"http_route.parent_refs must hold 1 to 32 GatewayRefs, got {len(self.parent_refs)}"
            )
        namespaces = []
        for i, ref in enumerate(self.parent_refs):
            where = f"http_route.parent_refs[{i}]"
            v.require_type(where, ref, GatewayRef)
            v.dns_subdomain(f"{where}.name", ref.name)
            if ref.namespace is not None:
                v.dns_label(f"{where}.namespace", ref.namespace)
            if ref.section_name is not None:
                v.dns_subdomain(f"{where}.section_name", ref.section_name)
            namespaces.append(ref.namespace or route_namespace)
        v.require_type("http_route.hostnames", self.hostnames, (tuple, list))
        if len(self.hostnames) > 16:
            raise ValueError(
                f"http_route.hostnames must hold at most 16, got {len(self.hostnames)}"
            )
        for i, host in enumerate(self.hostnames):
            v.host_name(f"http_route.hostnames[{i}]", host)
        v.route_path("http_route.path", self.path)
        if self.controller_namespace is not None:
            return (v.dns_label("http_route.controller_namespace", self.controller_namespace),)
        return tuple(dict.fromkeys(ns for ns in namespaces if ns))


@dataclass(frozen=True)
class EnvFrom:
    """Every key of a ConfigMap or Secret managed elsewhere, as environment variables."""

    config_map: str | None = None
    """Name of the ConfigMap (give this or ``secret``). Default: - none."""
    secret: str | None = None
    """Name of the Secret (give this or ``config_map``). Default: - none."""
    prefix: str = ""
    """Prefix of each variable's name. Default: "" (the keys as they are)."""
    optional: bool = False
    """Start the pods even when the object does not exist. Default: False (pods wait for it)."""

    def _to_json(self, argument: str) -> dict[str, Any]:
        if (self.config_map is None) == (self.secret is None):
            raise ValueError(
                f"{argument} must name a config_map or a secret, got "
                f"config_map={self.config_map!r}, secret={self.secret!r}"
            )
        kind, name = (
            ("configMapRef", self.config_map)
            if self.secret is None
            else (
                "secretRef",
                self.secret,
            )
        )
        field_name = "config_map" if kind == "configMapRef" else "secret"
        v.dns_subdomain(f"{argument}.{field_name}", name)
        v.require_type(f"{argument}.prefix", self.prefix, str)
        if self.prefix and not v.C_IDENTIFIER.fullmatch(self.prefix):
            raise ValueError(
                f"{argument}.prefix must be empty or a C identifier, got {self.prefix!r}"
            )
        v.require_type(f"{argument}.optional", self.optional, bool)
        source: dict[str, Any] = {kind: {"name": name, "optional": self.optional}}
        if self.prefix:
            source["prefix"] = self.prefix
        return source


@dataclass(frozen=True)
class ExtraContainer:
    """An init container or a sidecar: the app container's hardening unless overridden.

    It runs as the pod's user (10001), with a read-only root filesystem, no privilege
    escalation, every capability dropped and seccomp RuntimeDefault; ``security_context`` may
    change those fields only within Pod Security "restricted" (else a ValueError at synth).
    """

    name: str
    """Container name (a DNS label, unique in the pod)."""
    image: str
    """Image pinned by tag or digest."""
    command: tuple[str, ...] = ()
    """Entrypoint. Default: - the image's."""
    args: tuple[str, ...] = ()
    """Arguments. Default: - the image's."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Plain environment variables. Default: - none."""
    mounts: Mapping[str, str] = field(default_factory=dict)
    """Mount path -> name of a pod volume ("tmp", the app's in-memory /tmp, or one of the
    backend's ``volumes``). Default: - none."""
    resources: Resources | None = None
    """Requests and limits. Default: - 50m CPU (limit 250m, none when the app has no CPU
    limit), 64 MiB memory, 1 GiB ephemeral storage."""
    security_context: Mapping[str, Any] = field(default_factory=dict)
    """Kubernetes securityContext fields laid over the defaults (runAsUser, runAsGroup,
    readOnlyRootFilesystem, capabilities: {add: [NET_BIND_SERVICE]} ...). Default: - none."""


def extra_container_resources(app: Resources) -> Resources:
    """What an init container or sidecar gets by default: small, and no CPU limit when the app
    has none (a platform that forbids CPU limits forbids them on every container)."""
    return Resources(
        cpu_request_millicores=50,
        cpu_limit_millicores=None if app.cpu_limit_millicores is None else 250,
        memory_request_mib=64,
        memory_limit_mib=64,
        tmp_size_mib=1,
    )


# -- how objects reach the output ---------------------------------------------------------------


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
        self, scope: Construct, id: str, document: dict[str, Any], facts: _ChartFacts
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
class _ChartFacts:
    app: Any
    namespace: str | None
    labels: dict[str, str]


# Read once per chart: each read is a round trip to Node.
_CHART_FACTS: weakref.WeakKeyDictionary[cdk8s.Chart, _ChartFacts] = weakref.WeakKeyDictionary()


def _chart_facts(chart: cdk8s.Chart) -> _ChartFacts:
    facts = _CHART_FACTS.get(chart)
    if facts is None:
        facts = _CHART_FACTS[chart] = _ChartFacts(
            chart.node.root, chart.namespace, dict(chart.labels or {})
        )
    return facts


# -- plain data: quantities, containers, pods ---------------------------------------------------


# Quantities in the API server's canonical form ("1", not "1000m"; "1Gi", not "1024Mi"): it
# stores that form, so any other spelling makes every `kubectl apply` patch the Deployment again
# and makes server-side apply report a conflict with a client-side apply of the same manifest.
def _quantity_millicores(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _quantity_mebibytes(mebibytes: int) -> str:
    for unit, size in (("Ti", 1024 * 1024), ("Gi", 1024)):
        if mebibytes % size == 0:
            return f"{mebibytes // size}{unit}"
    return f"{mebibytes}Mi"


def _resources_json(res: Resources) -> dict[str, Any]:
    requests = {
        "cpu": _quantity_millicores(res.cpu_request_millicores),
        "ephemeral-storage": _quantity_mebibytes(res.ephemeral_storage_request_gib * 1024),
        "memory": _quantity_mebibytes(res.memory_request_mib),
    }
    limits = {
        "ephemeral-storage": _quantity_mebibytes(res.ephemeral_storage_limit_gib * 1024),
        "memory": _quantity_mebibytes(res.memory_limit_mib),
    }
    if res.cpu_limit_millicores is not None:
        limits["cpu"] = _quantity_millicores(res.cpu_limit_millicores)
    return {"limits": limits, "requests": requests}


# Pod Security "restricted", and what scanners ask on top (read-only root, UID/GID >= 10000):
# every container of every pod the backend makes starts from this.
HARDENED_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsGroup": RUN_AS_GROUP,
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _memory_volume(name: str, size_mib: int) -> dict[str, Any]:
    return {"emptyDir": {"medium": "Memory", "sizeLimit": f"{size_mib}Mi"}, "name": name}


def _http_probe(path: str, port: int, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "failureThreshold": failures,
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
    }


def _cpu_env(name: str, resource: str) -> dict[str, Any]:
    """The container's own CPU (Downward API), in millicores."""
    return {
        "name": name,
        "valueFrom": {"resourceFieldRef": {"divisor": "1m", "resource": resource}},
    }


def _volumes_json(volumes: Sequence[kplus.Volume]) -> list[dict[str, Any]]:
    """The user's cdk8s-plus Volumes as JSON, written by cdk8s-plus itself (in a scratch pod:
    a Volume writes itself only as part of a pod). A few round trips, only with volumes."""
    if not volumes:
        return []
    import cdk8s_plus_27 as kplus

    scratch = cdk8s.Chart(cdk8s.App(), "volumes")
    pod = kplus.Pod(
        scratch, "pod", volumes=list(volumes), containers=[kplus.ContainerProps(image="scratch")]
    )
    return list(cdk8s.ApiObject.of(pod).to_json()["spec"]["volumes"])


def _namespace_peer(namespace: str, pod_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    peer: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    if pod_labels:
        peer["podSelector"] = {"matchLabels": dict(pod_labels)}
    return peer


def _env_from_sources(sources: Sequence[EnvFrom]) -> list[dict[str, Any]]:
    v.require_type("env_from", sources, (tuple, list))
    result = []
    for i, source in enumerate(sources):
        v.require_type(f"env_from[{i}]", source, EnvFrom)
        result.append(source._to_json(f"env_from[{i}]"))
    return result


def _extra_volumes(volumes: Mapping[str, kplus.Volume]) -> dict[str, kplus.Volume]:
    """The user's volumes by normalised mount path, clear of the backend's own."""
    v.require_type("volumes", volumes, Mapping)
    if volumes:
        import cdk8s_plus_27 as kplus
    by_path: dict[str, kplus.Volume] = {}
    by_name: dict[str, kplus.Volume] = {}
    for path, volume in volumes.items():
        # Normalised first: '/tmp/', '/tmp/.' and '//tmp' are all /tmp. Above a backend path
        # ('/run', '/'), its mount point would have to be made inside the user's volume.
        mount = v.mount_path("volumes key", path)
        for reserved in (TMP_DIR, SECRETS_DIR, METRICS_DIR):
            inside = f"{mount}/".startswith(f"{reserved}/")
            above = f"{reserved}/".startswith(f"{mount.rstrip('/')}/")
            if inside or above:
                raise ValueError(
                    f"volumes key must be a path neither on, inside nor above {TMP_DIR}, "
                    f"{SECRETS_DIR} and {METRICS_DIR} (the backend mounts those), got {path!r}"
                )
        if mount in by_path:
            raise ValueError(
                f"volumes key {path!r} is the mount path {mount!r} given twice; one volume per path"
            )
        v.require_type(f"volumes[{path!r}]", volume, kplus.Volume)
        name = v.dns_label(f"volumes[{path!r}] name", volume.name)
        if name in RESERVED_VOLUMES:
            # The pod would hold two volumes of that name, which the API server refuses.
            raise ValueError(
                f"volumes[{path!r}] name must not be one the backend uses "
                f"({', '.join(RESERVED_VOLUMES)}), got {name!r}"
            )
        if by_name.setdefault(name, volume) is not volume:
            raise ValueError(
                f"volumes[{path!r}] name {name!r} is already the name of another volume; volume "
                "names must be unique in a pod"
            )
        by_path[mount] = volume
    return by_path


def _config_checksum(
    config: Mapping[str, str], secrets: Mapping[str, str], existing_secret: str | None
) -> str:
    """checksum/config: changes with every config or secret value, and gives none of them away.

    The pod template carries it, so any change rolls the pods. Whoever may read Deployments
    (Kubernetes' `view` role) sees it, and sees the ConfigMap, but not the Secret: a plain hash
    over the values would let them test guesses of a secret offline (a 4-digit password falls
    in milliseconds). So it is an HMAC-SHA256 keyed by a key derived from SECRET_KEY, a value of
    at least 32 random characters (checked) that only the Secret holds: without it, no guess of
    any value can be checked. The same input gives the same checksum on every synth. Without
    secret values (none, or a Secret managed elsewhere), the data is public and the key empty.
    """
    key = (
        hmac.new(
            secrets[CHECKSUM_KEY_SECRET].encode(), b"flask-backend checksum/config", hashlib.sha256
        ).digest()
        if secrets
        else b""
    )
    data = json.dumps([config, secrets, existing_secret], sort_keys=True).encode()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


class FlaskBackend(Construct):
    """A Flask API served by gunicorn: Deployment, Service, ConfigMap, Secret and the extras
    production needs (ServiceAccount, PodDisruptionBudget, NetworkPolicy, optional HPA).

    Every object is named after ``name`` (no hash suffix) and carries the recommended
    ``app.kubernetes.io/*`` labels; pods are selected by ``name`` and ``instance`` only, so moving
    the construct or changing the image never touches an immutable selector.

    The children are attributes, each a ``cdk8s.ApiObject`` (or None when not emitted):
    ``deployment``, ``service``, ``config_map``, ``secret``, ``service_account``,
    ``pod_disruption_budget``, ``network_policy``, ``horizontal_pod_autoscaler``,
    ``service_monitor``, ``migration_job``, ``migration_network_policy``, ``ingress`` and
    ``http_route``. Each object's JSON is built once, in Python; escape hatches on them land
    (``ApiObject.of(backend.deployment).add_json_patch(...)``, ``.metadata.add_label(...)``).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        image: str,
        name: str | None = None,
        replicas: int = 2,
        port: int = DEFAULT_PORT,
        service_port: int = 80,
        config: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        existing_secret: str | None = None,
        secrets_as_env: bool = False,
        env_prefix: str = "FLASK_",
        env: Mapping[str, str] | None = None,
        image_pull_policy: str = "Always",
        image_pull_secrets: Sequence[str] = (),
        allow_latest_tag: bool = False,
        version: str | None = None,
        component: str = "backend",
        part_of: str | None = None,
        resources: Resources | None = None,
        probes: Probes | None = None,
        shutdown: Shutdown | None = None,
        autoscaling: Autoscaling | None = None,
        network_policy: NetworkPolicyOptions | None = NetworkPolicyOptions(),
        scheduling: Scheduling | None = None,
        pod_annotations: Mapping[str, str] | None = None,
        volumes: Mapping[str, kplus.Volume] | None = None,
        migrations: Migrations | None = None,
        metrics: Metrics | None = Metrics(),
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        ingress: Ingress | None = None,
        http_route: HttpRoute | None = None,
        env_from: Sequence[EnvFrom] = (),
        init_containers: Sequence[ExtraContainer] = (),
        sidecars: Sequence[ExtraContainer] = (),
        native_sidecars: bool = True,
        priority_class_name: str | None = None,
        service_account: str | None = None,
    ) -> None:
        """
        :param image: Image pinned by tag or digest ("repo/api:1.4.2", "repo/api@sha256:…").
        :param name: Name of every object, and prefix of the ConfigMap and Secret names.
            Default: - the construct id.
        :param replicas: Pods to run. Default: 2 (ignored when ``autoscaling`` is set).
        :param port: Port the app listens on (passed to it as PORT). Default: 8000.
        :param service_port: Port of the ClusterIP Service. Default: 80.
        :param config: Non-secret settings, stored in a ConfigMap and passed as environment
            variables ``{env_prefix}{key}``. Default: - an empty ConfigMap.
        :param secrets: Secret settings, stored in a Secret, passed as read-only files
            ``/run/secrets/{key}``. Values come from the environment at synth time, never source.
            Unless empty, must hold ``SECRET_KEY`` of at least 32 random characters: it keys
            the ``checksum/config`` annotation (README: "Secrets").
            Default: - no Secret (unless ``existing_secret``).
        :param existing_secret: Name of a Secret managed elsewhere (kubectl, Sealed Secrets,
            External Secrets) to mount instead; no Secret is emitted. Default: - none.
        :param secrets_as_env: Pass secrets as environment variables instead of files (visible in
            /proc/*/environ and to child processes, so off by default). Default: False.
        :param env_prefix: Prefix of the environment variables made from ``config`` keys
            (Flask's ``from_prefixed_env``). Default: "FLASK_".
        :param env: Extra plain environment variables. Default: - none.
        :param image_pull_policy: "Always", "IfNotPresent" or "Never". Default: "Always".
        :param image_pull_secrets: Names of registry credential Secrets. Default: - none.
        :param allow_latest_tag: Accept the mutable ":latest" tag. Default: False.
        :param version: ``app.kubernetes.io/version`` label. Default: - the image tag, else the
            first 12 hex digits of its digest.
        :param component: ``app.kubernetes.io/component`` label. Default: "backend".
        :param part_of: ``app.kubernetes.io/part-of`` label. Default: - ``name``.
        :param resources: Requests and limits. Default: - ``Resources()``.
        :param probes: Health endpoints and timings. Default: - ``Probes()``.
        :param shutdown: preStop, graceful timeout and grace period. Default: - ``Shutdown()``.
        :param autoscaling: Add a HorizontalPodAutoscaler. Default: - none, fixed ``replicas``.
        :param network_policy: Ingress only to the http port; pass None for no NetworkPolicy.
            Default: - ``NetworkPolicyOptions()``.
        :param scheduling: Node selector, tolerations, spreading. Default: - ``Scheduling()``.
        :param pod_annotations: Extra annotations on the pod template (at most 256, 256 KiB in
            all). Default: - none.
        :param volumes: Extra volumes, keyed by absolute mount path (normalised; not on, inside
            or above /tmp and /run/secrets). Default: - none.
        :param migrations: Run schema migrations in a Job once per release, and hold new pods in
            an init container until the schema is at their head. Default: - none.
        :param metrics: Prometheus metrics on their own port, optionally a ServiceMonitor; pass
            None for none. Default: - ``Metrics()``.
        :param max_request_bytes: Largest request accepted: passed to the app as
            MAX_REQUEST_BYTES (Flask's MAX_CONTENT_LENGTH refuses a larger body with 413,
            gunicorn a longer request line or header field, within its own 4094/8190-byte
            limits) and to ingress-nginx as its proxy-body-size. Default: 1048576 (1 MiB,
            nginx's own default).
        :param ingress: Route a host and path to the Service with an Ingress. Default: - none.
        :param http_route: Route to the Service with a Gateway API HTTPRoute. Default: - none.
        :param env_from: ConfigMaps and Secrets managed elsewhere, as environment variables;
            the backend's own ``config``, secrets and ``env`` win over their keys.
            Default: - none.
        :param init_containers: Containers that run to completion, in order, before the app
            starts, hardened like the app. Default: - none.
        :param sidecars: Containers that run beside the app for the pod's life (proxies, log
            shippers), hardened like the app. Native sidecars (init containers with
            ``restartPolicy: Always``): they start before the init containers and the app, and
            stop after the app. Default: - none.
        :param native_sidecars: Emit ``sidecars`` as native sidecars, which need Kubernetes 1.29
            or newer (on by default since 1.29, GA in 1.33); False makes them plain containers
            of the pod, for older clusters (no start order; checkov then asks them for probes).
            Default: True.
        :param priority_class_name: PriorityClass of the pods (it must exist in the cluster).
            Default: - the cluster's default priority.
        :param service_account: Name of a ServiceAccount managed elsewhere (e.g. annotated for
            workload identity) for the pods to run as; none is emitted. Default: - a
            ServiceAccount named after the backend, without an API token.
        """
        # 1. Resolve and validate every input before any Kubernetes object exists, and before
        # joining the construct tree: a rejected call leaves the chart untouched, so the caller
        # can fix the input and retry with the same id.
        v.require_type("id", id, str)
        if not id:
            raise ValueError("id must not be empty, got ''")
        self.name = v.dns_label("name", id if name is None else name, rfc1035=True)
        if self.name == "default":
            # Every namespace has a ServiceAccount "default", which other pods run as.
            raise ValueError(
                "name must not be 'default': the backend's ServiceAccount would overwrite the "
                "namespace's own, got 'default'"
            )
        self.image = image
        self.image_reference = v.image_reference("image", image, allow_latest=allow_latest_tag)
        self.replicas = v.int_in_range("replicas", replicas, 0)
        self.port = v.int_in_range("port", port, 1, 65535)
        self.service_port = v.int_in_range("service_port", service_port, 1, 65535)
        v.require_type("secrets_as_env", secrets_as_env, bool)
        v.require_type("env_prefix", env_prefix, str)
        self.secrets_as_env, self.env_prefix = secrets_as_env, env_prefix
        if env_prefix and not v.C_IDENTIFIER.fullmatch(env_prefix):
            raise ValueError(f"env_prefix must be empty or a C identifier, got {env_prefix!r}")
        self.config = v.string_map("config", config or {})
        v.yaml_text("config", self.config)
        v.data_keys("config", self.config, env_prefix=env_prefix)
        if secrets is not None and existing_secret is not None:
            raise ValueError(
                "secrets and existing_secret are exclusive: pass the values or the name of a "
                f"Secret managed elsewhere, got both (existing_secret={existing_secret!r})"
            )
        secret_data = v.string_map("secrets", secrets or {}, secret=True)
        v.yaml_text("secrets", secret_data, secret=True)
        v.data_keys("secrets", secret_data, env_prefix=env_prefix if secrets_as_env else None)
        if secret_data and len(secret_data.get(CHECKSUM_KEY_SECRET, "")) < MIN_CHECKSUM_KEY_LENGTH:
            # It keys the rollout checksum (see _config_checksum): a short or missing one would
            # let anyone who can read Deployments test guesses of every secret value.
            got = (
                f"{len(secret_data[CHECKSUM_KEY_SECRET])} characters"
                if CHECKSUM_KEY_SECRET in secret_data
                else f"keys {sorted(secret_data)}"
            )
            raise ValueError(
                f"secrets[{CHECKSUM_KEY_SECRET!r}] must be at least {MIN_CHECKSUM_KEY_LENGTH} "
                "random characters (it signs sessions and keys the checksum/config annotation, "
                f"which Deployment readers see), got {got}"
            )
        self.existing_secret = (
            None if existing_secret is None else v.dns_subdomain("existing_secret", existing_secret)
        )
        self.extra_env = v.string_map("env", env or {})
        v.yaml_text("env", self.extra_env)
        for key in self.extra_env:
            if not v.C_IDENTIFIER.fullmatch(key):
                raise ValueError(f"env key must be a C identifier, got {key!r}")
            if key in RESERVED_ENV:
                # These carry the contract with the app (port, grace period, CPU, secrets dir).
                raise ValueError(
                    f"env key must not be one the backend sets ({', '.join(RESERVED_ENV)}), "
                    f"got {key!r}"
                )
        self.image_pull_policy = v.one_of(
            "image_pull_policy", image_pull_policy, tuple(IMAGE_PULL_POLICIES)
        )
        v.require_type("image_pull_secrets", image_pull_secrets, (list, tuple))
        self.image_pull_secrets = tuple(
            v.dns_subdomain(f"image_pull_secrets[{i}]", s) for i, s in enumerate(image_pull_secrets)
        )
        self.resources = resources or Resources()
        self.probes = probes or Probes()
        self.shutdown = shutdown or Shutdown()
        self.autoscaling = autoscaling
        self.network_policy_options = network_policy
        self.scheduling = scheduling or Scheduling()
        self.metrics = metrics
        if metrics is not None and metrics.port == self.port:
            raise ValueError(
                f"metrics.port must differ from port ({self.port}): scrapers are admitted to the "
                f"metrics port only, got {metrics.port}"
            )
        for argument, group, kind in (
            ("resources", self.resources, Resources),
            ("probes", self.probes, Probes),
            ("shutdown", self.shutdown, Shutdown),
            ("autoscaling", self.autoscaling, Autoscaling),
            ("network_policy", self.network_policy_options, NetworkPolicyOptions),
            ("scheduling", self.scheduling, Scheduling),
            ("metrics", metrics, Metrics),
        ):
            if group is not None:
                v.require_type(argument, group, kind)
                group._validate()
        self.pod_annotations = v.annotation_map("pod_annotations", pod_annotations or {})
        v.yaml_text("pod_annotations", self.pod_annotations)
        if CHECKSUM_ANNOTATION in self.pod_annotations:
            raise ValueError(
                f"pod_annotations must not set {CHECKSUM_ANNOTATION!r}: the backend computes it "
                "so config changes roll the pods"
            )
        v.pod_map_entries("pod_annotations", self.pod_annotations)
        v.annotations_size(
            "pod_annotations", {CHECKSUM_ANNOTATION: "0" * 64, **self.pod_annotations}
        )
        self.extra_volumes = _extra_volumes(volumes or {})
        self.max_request_bytes = v.int_in_range("max_request_bytes", max_request_bytes, 1)
        self.env_from = _env_from_sources(env_from)
        volume_names = {TMP_VOLUME, *(volume.name for volume in self.extra_volumes.values())}
        v.require_type("init_containers", init_containers, (tuple, list))
        v.require_type("sidecars", sidecars, (tuple, list))
        taken = {self.name}
        self.init_containers = [
            self._extra_container(f"init_containers[{i}]", c, volume_names, taken, allow_latest_tag)
            for i, c in enumerate(init_containers)
        ]
        self.sidecars = [
            self._extra_container(f"sidecars[{i}]", c, volume_names, taken, allow_latest_tag)
            for i, c in enumerate(sidecars)
        ]
        v.require_type("native_sidecars", native_sidecars, bool)
        self.native_sidecars = native_sidecars
        self.priority_class_name = (
            None
            if priority_class_name is None
            else v.dns_subdomain("priority_class_name", priority_class_name)
        )
        if service_account is not None:
            v.dns_subdomain("service_account", service_account)
            if service_account == "default":
                raise ValueError(
                    "service_account must not be 'default', which every pod of the namespace "
                    "shares (checkov CKV_K8S_41); got 'default'"
                )
        self.existing_service_account = service_account
        # What the container's environment will hold, within what execve accepts. The backend's
        # own variables count too (CPU_LIMIT_MILLICORES at its longest).
        own_env = {
            "PORT": str(self.port),
            "GRACEFUL_TIMEOUT": str(self.shutdown.graceful_timeout_seconds),
            "SECRETS_DIR": SECRETS_DIR,
            "CPU_LIMIT_MILLICORES": str(v.INT32_MAX),
            **self._metrics_env(),
            "MAX_REQUEST_BYTES": str(self.max_request_bytes),
        }
        env_sources = {
            "the backend": own_env,
            "env": self.extra_env,
            "config": {env_prefix + k: value for k, value in self.config.items()},
        }
        if secrets_as_env:
            env_sources["secrets"] = {env_prefix + k: value for k, value in secret_data.items()}
        v.environment(env_sources)
        self.migrations = migrations
        if migrations is not None:
            v.require_type("migrations", migrations, Migrations)
            migrations._validate()
        self.labels = self._recommended_labels(version, component, part_of)
        self.selector_labels = {
            k: self.labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")
        }
        self.config_checksum = _config_checksum(self.config, secret_data, self.existing_secret)

        # Where the objects land, and what is already there.
        # (A chart passed as the scope is its own chart: no round trip to Node to find it.)
        chart = scope if isinstance(scope, cdk8s.Chart) else cdk8s.Chart.of(scope)
        facts = _chart_facts(chart)
        self.namespace = namespace = facts.namespace
        if namespace is not None and namespace.startswith("kube-"):
            # kube-system and the other kube-* namespaces hold the cluster's own components.
            raise ValueError(
                f"namespace (of chart {chart.node.id!r}) must not start with 'kube-', which "
                f"Kubernetes reserves for its own components, got {namespace!r}"
            )
        self.ingress_options = ingress
        if ingress is not None:
            v.require_type("ingress", ingress, Ingress)
            ingress._validate()
        self.http_route_options = http_route
        route_namespaces: tuple[str, ...] = ()
        if http_route is not None:
            v.require_type("http_route", http_route, HttpRoute)
            route_namespaces = http_route._validate(namespace)
        # The namespaces whose proxies deliver routed traffic: the NetworkPolicy admits them.
        self.router_namespaces = tuple(
            dict.fromkeys([*([ingress.controller_namespace] if ingress else []), *route_namespaces])
        )
        if self.name == "kubernetes" and namespace in (None, "default"):
            raise ValueError(
                "name must not be 'kubernetes' in the default namespace: the backend's Service "
                "would overwrite the API server's, got 'kubernetes'"
            )
        # Names come from `name`, not from ids (unique among siblings only): two backends
        # anywhere in one App, in any chart, must not emit the same object twice. Every kind a
        # backend may emit is claimed, emitted or not.
        emitted = v.claim_objects(
            facts.app,
            self,
            [
                (kind, object_name, namespace)
                for kind, object_name in (
                    ("Deployment", self.name),
                    ("Service", self.name),
                    ("ServiceAccount", self.name),
                    ("ConfigMap", f"{self.name}-config"),
                    ("Secret", f"{self.name}-secrets"),
                    ("PodDisruptionBudget", self.name),
                    ("NetworkPolicy", self.name),
                    ("NetworkPolicy", f"{self.name}-migrations"),
                    ("HorizontalPodAutoscaler", self.name),
                    ("ServiceMonitor", self.name),
                    ("Ingress", self.name),
                    ("HTTPRoute", self.name),
                )
            ],
            argument="name",
            value=self.name,
        )

        # 2. The children: each object once, from plain data.
        try:
            super().__init__(scope, id)
        except Exception as error:
            # A taken id: constructs raises a jsii error (checking first would cost a round
            # trip to Node for every backend).
            v.release_objects(facts.app, emitted)
            if "There is already a Construct with name" not in str(error):
                raise
            raise ValueError(
                f"id {id!r} is already used by another construct in {scope.node.path!r}; "
                "pass a distinct id"
            ) from None

        def emit(child_id: str, document: dict[str, Any]) -> cdk8s.ApiObject:
            return _Manifest(self, child_id, document, facts)

        def emit_if(child_id: str, document: dict[str, Any] | None) -> cdk8s.ApiObject | None:
            return None if document is None else emit(child_id, document)

        self.service_account_name = self.existing_service_account or self.name
        self.service_account: cdk8s.ApiObject | None = (
            None
            if self.existing_service_account
            else emit("service-account", self._service_account())
        )
        # Data in one field, keys sorted: the same data in another order gives the same file.
        self.config_map = emit(
            "config", self._data_object("ConfigMap", f"{self.name}-config", self.config)
        )
        self.secret: cdk8s.ApiObject | None = None
        if secrets is not None:
            # `data`, base64, as the API server stores it: `stringData` is write-only, so every
            # `kubectl apply` would send it again ("configured" with nothing changed).
            encoded = {k: base64.b64encode(s.encode()).decode() for k, s in secret_data.items()}
            self.secret = emit(
                "secret", self._data_object("Secret", f"{self.name}-secrets", encoded)
            )
        self.secret_name = self.existing_secret or (f"{self.name}-secrets" if self.secret else None)
        self._extra_volumes_json = _volumes_json(list(self.extra_volumes.values()))
        # Built before the Deployment, whose pods wait for it; emitted after it, with its policy.
        job = self._migration_job()
        self.deployment = emit("deployment", self._deployment(job))
        self.service = emit("service", self._service())
        self.pod_disruption_budget = emit_if("pod-disruption-budget", self._pdb())
        app_policy = self._network_policy()
        self.network_policy = emit_if("network-policy", app_policy)
        self.horizontal_pod_autoscaler = emit_if("autoscaler", self._autoscaler())
        self.service_monitor = emit_if("service-monitor", self._service_monitor())
        self.migration_job = emit_if("migration-job", job)
        self.migration_network_policy = emit_if(
            "migration-network-policy", self._migration_network_policy(app_policy, job)
        )
        self.ingress = emit_if("ingress", self._ingress())
        self.http_route = emit_if("http-route", self._http_route())

    @property
    def service_host(self) -> str:
        """The Service's in-cluster DNS name, e.g. ``api.backend.svc.cluster.local``.

        Just the Service name when the chart sets no namespace (it then resolves from the same
        namespace only).
        """
        namespace = self.namespace
        return f"{self.name}.{namespace}.svc.cluster.local" if namespace else self.name

    @property
    def service_url(self) -> str:
        """``http://{service_host}:{service_port}``, for a frontend's configuration."""
        return f"http://{self.service_host}:{self.service_port}"

    def __repr__(self) -> str:
        # Never the config or secret data: a repr ends up in logs and tracebacks.
        return f"FlaskBackend(name={self.name!r}, image={self.image!r})"

    # -- wiring: plain functions of the resolved props, each returning one object's JSON ---------

    def _recommended_labels(
        self, version: str | None, component: str, part_of: str | None
    ) -> dict[str, str]:
        if version is None:
            ref = self.image_reference
            # A tag may be 128 characters and end in '_', '.' or '-'; a label value may not.
            # Trim it as Helm charts do, so every valid image gets a valid label.
            tag = ref.tag[:63].strip("_.-") if ref.tag else None
            version = tag if tag is not None else (ref.digest or "").partition(":")[2][:12]
        return {
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/version": v.label_value("version", version),
            "app.kubernetes.io/component": v.label_value("component", component),
            "app.kubernetes.io/part-of": v.label_value(
                "part_of", self.name if part_of is None else part_of
            ),
            "app.kubernetes.io/managed-by": "cdk8s",
        }

    def _object(
        self,
        api_version: str,
        kind: str,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        **body: Any,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "labels": dict(labels or self.labels)}
        if annotations:
            metadata["annotations"] = dict(annotations)
        return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}

    def _service_account(self) -> dict[str, Any]:
        return self._object("v1", "ServiceAccount", self.name, automountServiceAccountToken=False)

    def _data_object(self, kind: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {"immutable": False}
        if data:  # even all-empty values: "" is still a setting the app must see
            body["data"] = dict(sorted(data.items()))
        return self._object("v1", kind, name, **body)

    def _checkov_skips(self) -> dict[str, str] | None:
        """Annotations of the Deployment and the migration Job."""
        if self.resources.cpu_limit_millicores is not None:
            return None
        # An explicit, reasoned skip of checkov's CPU-limit check, on this Deployment only.
        return {
            # checkov splits the value at '=': the reason must hold none.
            "checkov.io/skip1": f"{CPU_LIMIT_CHECK}=no CPU limit by choice "
            "(resources.cpu_limit_millicores is None); workers are sized from the CPU request"
        }

    def _metrics_env(self) -> dict[str, str]:
        if self.metrics is None:
            return {}
        return {"METRICS_PORT": str(self.metrics.port), "PROMETHEUS_MULTIPROC_DIR": METRICS_DIR}

    # -- the hardened pod: one definition for the Deployment and the migration Job ---------------

    def _app_container(self, serving: bool) -> dict[str, Any]:
        """The app's container. Serving, it listens, is probed and exports metrics; else
        (migrations) it runs a one-off command with the same image, config, secrets and limits.
        Metrics are the server's: a one-off command neither serves nor writes them, and a metrics
        setting must not change the Job's name (and run the migrations again)."""
        serving_metrics = serving and self.metrics is not None
        secret_files = self.secret_name is not None and not self.secrets_as_env
        env = {
            "PORT": str(self.port),
            "GRACEFUL_TIMEOUT": str(self.shutdown.graceful_timeout_seconds),
            "MAX_REQUEST_BYTES": str(self.max_request_bytes),
            **self.extra_env,
            **({"SECRETS_DIR": SECRETS_DIR} if secret_files else {}),
            **(self._metrics_env() if serving_metrics else {}),
        }
        # gunicorn sizes its workers from the CPU the container really has (Downward API): its
        # limit, else its request. Never limits.cpu without a limit: that is the node's CPU.
        cpu_env = (
            _cpu_env("CPU_REQUEST_MILLICORES", "requests.cpu")
            if self.resources.cpu_limit_millicores is None
            else _cpu_env("CPU_LIMIT_MILLICORES", "limits.cpu")
        )
        # A later envFrom wins: the user's sources first, then the backend's config and secrets.
        env_from = [
            *self.env_from,
            {"configMapRef": {"name": f"{self.name}-config"}, "prefix": self.env_prefix},
        ]
        if self.secret_name is not None and self.secrets_as_env:
            # The app reads secrets under the config prefix (FLASK_SECRET_KEY), and the keys
            # were validated under it.
            secret_ref: dict[str, Any] = {"secretRef": {"name": self.secret_name}}
            if self.env_prefix:
                secret_ref["prefix"] = self.env_prefix
            env_from.append(secret_ref)
        mounts: list[dict[str, Any]] = [{"mountPath": TMP_DIR, "name": TMP_VOLUME}]
        if secret_files:
            mounts.append({"mountPath": SECRETS_DIR, "name": SECRETS_VOLUME, "readOnly": True})
        mounts += [
            {"mountPath": path, "name": volume.name} for path, volume in self.extra_volumes.items()
        ]
        if serving_metrics:
            mounts.append({"mountPath": METRICS_DIR, "name": METRICS_VOLUME})
        container: dict[str, Any] = {
            "env": [{"name": k, "value": value} for k, value in env.items()] + [cpu_env],
            "envFrom": env_from,
            "image": self.image,
            "imagePullPolicy": self.image_pull_policy,
            "name": self.name,
            "resources": _resources_json(self.resources),
            "securityContext": HARDENED_CONTAINER,
            "volumeMounts": mounts,
        }
        if not serving:
            return container
        probes, shutdown = self.probes, self.shutdown
        ports = [{"containerPort": self.port, "name": PORT_NAME}]
        if self.metrics is not None:
            ports.append({"containerPort": self.metrics.port, "name": METRICS_PORT_NAME})
        container |= {
            "ports": ports,
            # Startup every 2 s until it passes; liveness and readiness give up after 3
            # failures, Kubernetes' default.
            "startupProbe": _http_probe(
                probes.startup_path,
                self.port,
                2,
                probes.timeout_seconds,
                probes.startup_failure_threshold,
            ),
            "readinessProbe": _http_probe(
                probes.readiness_path, self.port, probes.period_seconds, probes.timeout_seconds, 3
            ),
            "livenessProbe": _http_probe(
                probes.liveness_path, self.port, probes.period_seconds, probes.timeout_seconds, 3
            ),
        }
        if shutdown.pre_stop_sleep_seconds:
            command = ["sleep", str(shutdown.pre_stop_sleep_seconds)]
            container["lifecycle"] = {"preStop": {"exec": {"command": command}}}
        return container

    def _pod_spec(
        self,
        containers: list[dict[str, Any]],
        init_containers: list[dict[str, Any]],
        serving: bool,
    ) -> dict[str, Any]:
        """What a hardened pod of this backend is: Pod Security "restricted", no API token, no
        service links, the backend's volumes, pull secrets and scheduling. Serving pods restart
        their containers and spread over nodes and zones; a one-off pod (migrations) does
        neither."""
        volumes = [_memory_volume(TMP_VOLUME, self.resources.tmp_size_mib)]
        if self.secret_name is not None and not self.secrets_as_env:
            volumes.append(
                {
                    "name": SECRETS_VOLUME,
                    "secret": {"defaultMode": 0o440, "secretName": self.secret_name},
                }
            )
        volumes += self._extra_volumes_json
        if serving and self.metrics is not None:
            volumes.append(_memory_volume(METRICS_VOLUME, self.metrics.dir_size_mib))
        pod: dict[str, Any] = {
            "automountServiceAccountToken": False,
            "containers": containers,
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": False,
            "restartPolicy": "Always" if serving else "Never",  # a Job retries with a new pod
            "securityContext": {
                "fsGroup": RUN_AS_GROUP,
                "fsGroupChangePolicy": "OnRootMismatch",
                "runAsGroup": RUN_AS_GROUP,
                "runAsNonRoot": True,
                "runAsUser": RUN_AS_USER,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "serviceAccountName": self.service_account_name,
            "setHostnameAsFQDN": False,
            "terminationGracePeriodSeconds": self.shutdown.termination_grace_period_seconds,
            "volumes": volumes,
        }
        if init_containers:
            pod["initContainers"] = init_containers
        if self.image_pull_secrets:
            pod["imagePullSecrets"] = [{"name": s} for s in self.image_pull_secrets]
        scheduling = self.scheduling
        if scheduling.node_selector:
            pod["nodeSelector"] = dict(scheduling.node_selector)
        if scheduling.tolerations:
            pod["tolerations"] = [dict(t) for t in scheduling.tolerations]
        if self.priority_class_name:
            pod["priorityClassName"] = self.priority_class_name
        if serving and scheduling.spread:
            selector = {"matchLabels": self.selector_labels}
            # Best effort (ScheduleAnyway): a one-node dev cluster still schedules all replicas.
            pod["topologySpreadConstraints"] = [
                {
                    "labelSelector": selector,
                    "maxSkew": 1,
                    "topologyKey": key,
                    "whenUnsatisfiable": "ScheduleAnyway",
                }
                for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
            ]
            pod["affinity"] = {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "podAffinityTerm": {
                                "labelSelector": selector,
                                "topologyKey": "kubernetes.io/hostname",
                            },
                            "weight": 100,
                        }
                    ]
                }
            }
        return pod

    def _native_sidecars(self) -> list[dict[str, Any]]:
        """Sidecars as init containers that keep running (Kubernetes 1.29+): they start before
        the init containers and the app, and stop after it."""
        if not self.native_sidecars:
            return []
        return [{**c, "restartPolicy": "Always"} for c in self.sidecars]

    def _deployment(self, job: dict[str, Any] | None) -> dict[str, Any]:
        init_containers = self._native_sidecars()
        annotations = dict(self._checkov_skips() or {})
        if job is not None:
            assert self.migrations is not None
            # After the native sidecars (a database proxy it may need), before the user's init
            # containers (which may then use the schema).
            wait = {
                **self._app_container(serving=False),
                "name": MIGRATIONS_WAIT_CONTAINER,
                "command": [*self.migrations.wait_command],
            }
            init_containers.append(wait)
            annotations[ARGO_SYNC_WAVE] = "1"  # after the Job, which stays in wave 0
        init_containers += self.init_containers
        containers = [self._app_container(serving=True)]
        if not self.native_sidecars:
            containers += self.sidecars
        spec: dict[str, Any] = {
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": self.selector_labels},
            # Never below the desired count during a rollout; a quarter more pods while it runs.
            "strategy": {
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
                "type": "RollingUpdate",
            },
            "template": {
                "metadata": {
                    "annotations": {
                        CHECKSUM_ANNOTATION: self.config_checksum,
                        **self.pod_annotations,
                    },
                    # Not the construct path (cdk8s-plus's default): moving the construct must
                    # not change the pod template and roll every pod.
                    "labels": self.labels,
                },
                "spec": self._pod_spec(containers, init_containers, serving=True),
            },
        }
        if self.autoscaling is None:
            spec = {"replicas": self.replicas, **spec}
        return self._object("apps/v1", "Deployment", self.name, annotations=annotations, spec=spec)

    def _migration_job(self) -> dict[str, Any] | None:
        """The migration Job: the app's pod, running the migration command once.

        Its name ends in a hash of everything it runs, so a new release gets a new Job and the
        same manifests applied again find the finished one (README: "Database and migrations").
        """
        if self.migrations is None:
            return None
        # Native sidecars (a database proxy) serve the migration too; the user's init containers
        # prepare the app and may need the schema the Job is about to make.
        migrate = {
            **self._app_container(serving=False),
            "name": MIGRATIONS_CONTAINER,
            "command": [*self.migrations.command],
        }
        pod = self._pod_spec([migrate], self._native_sidecars(), serving=False)
        digest = hashlib.sha256(
            json.dumps([self.name, pod, self.config_checksum], sort_keys=True).encode()
        ).hexdigest()[:10]
        # A Job name is a label value on its pods: at most 63 characters.
        name = f"{self.name[: 63 - len('-migrate-') - 10].rstrip('-')}-migrate-{digest}"
        # Not the app's selector: the Service, PodDisruptionBudget and NetworkPolicy must never
        # pick up a migration pod.
        labels = {
            **self.labels,
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "migrations",
        }
        spec: dict[str, Any] = {
            "backoffLimit": self.migrations.backoff_limit,
            "activeDeadlineSeconds": self.migrations.active_deadline_seconds,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        }
        if self.migrations.ttl_seconds_after_finished is not None:
            spec["ttlSecondsAfterFinished"] = self.migrations.ttl_seconds_after_finished
        return self._object(
            "batch/v1", "Job", name, labels=labels, annotations=self._checkov_skips(), spec=spec
        )

    # -- the objects around the pods --------------------------------------------------------------

    def _service(self) -> dict[str, Any]:
        # targetPort by name, so a port change in the pod never needs a Service change.
        ports = [{"name": PORT_NAME, "port": self.service_port, "targetPort": PORT_NAME}]
        if self.metrics is not None:
            # A ServiceMonitor finds pods through a Service port, by name.
            ports.append(
                {
                    "name": METRICS_PORT_NAME,
                    "port": self.metrics.port,
                    "targetPort": METRICS_PORT_NAME,
                }
            )
        spec = {"ports": ports, "selector": self.selector_labels, "type": "ClusterIP"}
        return self._object("v1", "Service", self.name, spec=spec)

    def _pdb(self) -> dict[str, Any] | None:
        minimum = self.autoscaling.min_replicas if self.autoscaling else self.replicas
        if minimum < 2:
            return None  # with one pod, any budget would block node drains
        spec = {"maxUnavailable": 1, "selector": {"matchLabels": self.selector_labels}}
        return self._object("policy/v1", "PodDisruptionBudget", self.name, spec=spec)

    def _autoscaler(self) -> dict[str, Any] | None:
        scaling = self.autoscaling
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
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name},
        }
        return self._object("autoscaling/v2", "HorizontalPodAutoscaler", self.name, spec=spec)

    def _service_monitor(self) -> dict[str, Any] | None:
        """The Prometheus Operator's ServiceMonitor; the tests validate it against the CRD's
        schema and a real API server."""
        if self.metrics is None or not self.metrics.service_monitor:
            return None
        spec = {
            "selector": {"matchLabels": self.selector_labels},
            "endpoints": [
                {
                    "port": METRICS_PORT_NAME,
                    "path": METRICS_PATH,
                    "interval": f"{self.metrics.scrape_interval_seconds}s",
                    # A scrape answers in milliseconds (BENCHMARKS.md); more means a sick pod.
                    "scrapeTimeout": f"{min(10, self.metrics.scrape_interval_seconds)}s",
                }
            ],
        }
        labels = {**self.labels, **self.metrics.service_monitor_labels}
        return self._object(
            "monitoring.coreos.com/v1", "ServiceMonitor", self.name, labels=labels, spec=spec
        )

    def _network_policy(self) -> dict[str, Any] | None:
        options = self.network_policy_options
        if options is None:
            return None
        ingress: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": PORT_NAME}]}
        if options.ingress_namespaces:
            # Routed traffic arrives from the ingress controller's or Gateway's proxies. (With
            # no list, any source may reach the port: the proxies included.)
            admitted = dict.fromkeys([*options.ingress_namespaces, *self.router_namespaces])
            ingress["from"] = [_namespace_peer(ns) for ns in admitted]
        rules = [ingress]
        if self.metrics is not None and self.metrics.scrape_namespaces:
            # Scrapers reach the metrics port only, never the API.
            rules.append(
                {
                    "from": [_namespace_peer(ns) for ns in self.metrics.scrape_namespaces],
                    "ports": [{"protocol": "TCP", "port": METRICS_PORT_NAME}],
                }
            )
        spec: dict[str, Any] = {
            "podSelector": {"matchLabels": self.selector_labels},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        }
        if options.egress is not None:
            spec["policyTypes"].append("Egress")
            dns = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
            spec["egress"] = [
                {"to": [dns], "ports": [{"protocol": p, "port": 53} for p in ("UDP", "TCP")]},
                *(
                    {
                        "to": [_namespace_peer(rule.namespace, rule.pod_labels)],
                        "ports": [{"protocol": "TCP", "port": p} for p in rule.ports],
                    }
                    for rule in options.egress
                ),
            ]
        return self._object("networking.k8s.io/v1", "NetworkPolicy", self.name, spec=spec)

    def _migration_network_policy(
        self, app_policy: dict[str, Any] | None, job: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The migration pods accept no traffic and may send what the app pods may."""
        if app_policy is None or job is None:
            return None
        egress = app_policy["spec"].get("egress")
        spec: dict[str, Any] = {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": self.name,
                    "app.kubernetes.io/component": "migrations",
                }
            },
            # Ingress listed with no rules: nothing may connect. No `ingress: []`: the API
            # server drops an empty list, so every `kubectl apply` would write it again.
            "policyTypes": ["Ingress", *(["Egress"] if egress is not None else [])],
        }
        if egress is not None:
            spec["egress"] = egress
        return self._object(
            "networking.k8s.io/v1", "NetworkPolicy", f"{self.name}-migrations", spec=spec
        )

    def _ingress(self) -> dict[str, Any] | None:
        options = self.ingress_options
        if options is None:
            return None
        annotations = {**options.annotations, BODY_SIZE_ANNOTATION: str(self.max_request_bytes)}
        backend = {"service": {"name": self.name, "port": {"name": PORT_NAME}}}
        spec: dict[str, Any] = {
            "rules": [
                {
                    "host": options.host,
                    "http": {
                        "paths": [{"path": options.path, "pathType": "Prefix", "backend": backend}]
                    },
                }
            ]
        }
        if options.class_name is not None:
            spec["ingressClassName"] = options.class_name
        if options.tls_secret is not None:
            spec["tls"] = [{"hosts": [options.host], "secretName": options.tls_secret}]
        return self._object(
            "networking.k8s.io/v1", "Ingress", self.name, annotations=annotations, spec=spec
        )

    def _http_route(self) -> dict[str, Any] | None:
        options = self.http_route_options
        if options is None:
            return None
        parents = []
        for ref in options.parent_refs:
            parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref.name}
            if ref.namespace is not None:
                parent["namespace"] = ref.namespace
            if ref.section_name is not None:
                parent["sectionName"] = ref.section_name
            parents.append(parent)
        spec: dict[str, Any] = {
            "parentRefs": parents,
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": options.path}}],
                    # By number: the Gateway API has no named ports.
                    "backendRefs": [{"name": self.name, "port": self.service_port}],
                }
            ],
        }
        if options.hostnames:
            spec["hostnames"] = list(options.hostnames)
        return self._object("gateway.networking.k8s.io/v1", "HTTPRoute", self.name, spec=spec)

    def _extra_container(
        self,
        argument: str,
        spec: ExtraContainer,
        volume_names: set[str],
        taken: set[str],
        allow_latest: bool,
    ) -> dict[str, Any]:
        """An init container or sidecar, validated, with the app's hardening."""
        v.require_type(argument, spec, ExtraContainer)
        name = v.dns_label(f"{argument}.name", spec.name)
        if name in taken:
            raise ValueError(
                f"{argument}.name must be unique in the pod (the app container is named after "
                f"the backend), got {name!r}"
            )
        taken.add(name)
        v.image_reference(f"{argument}.image", spec.image, allow_latest=allow_latest)
        container: dict[str, Any] = {
            "name": name,
            "image": spec.image,
            "imagePullPolicy": self.image_pull_policy,
        }
        for key in ("command", "args"):
            words = getattr(spec, key)
            v.require_type(f"{argument}.{key}", words, (tuple, list))
            for word in words:
                v.require_type(f"{argument}.{key}", word, str)
            v.yaml_text(f"{argument}.{key}", {str(i): w for i, w in enumerate(words)})
            if words:
                container[key] = list(words)
        env = v.string_map(f"{argument}.env", spec.env)
        v.yaml_text(f"{argument}.env", env)
        for key in env:
            if not v.C_IDENTIFIER.fullmatch(key):
                raise ValueError(f"{argument}.env key must be a C identifier, got {key!r}")
        if env:
            container["env"] = [{"name": k, "value": value} for k, value in env.items()]
        mounts = v.string_map(f"{argument}.mounts", spec.mounts)
        if mounts:
            container["volumeMounts"] = []
        for path, volume in mounts.items():
            mount = v.mount_path(f"{argument}.mounts key", path)
            if volume not in volume_names:
                raise ValueError(
                    f"{argument}.mounts[{path!r}] must name a volume of the pod "
                    f"({', '.join(sorted(volume_names))}), got {volume!r}"
                )
            container["volumeMounts"].append({"name": volume, "mountPath": mount})
        resources = spec.resources or extra_container_resources(self.resources)
        v.require_type(f"{argument}.resources", resources, Resources)
        resources._validate()
        container["resources"] = _resources_json(resources)
        overrides = v.restricted_security_context(
            f"{argument}.security_context", spec.security_context
        )
        container["securityContext"] = {**HARDENED_CONTAINER, **overrides}
        return container
