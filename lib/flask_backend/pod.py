"""The hardened pod: one definition for the Deployment's pods and the migration Job's.

Its options (Resources, Probes, Shutdown, Scheduling, ExtraContainer), their validation, and the
JSON of the app container, the extra containers and the pod spec. Every container of every pod
the backend makes starts from HARDENED_CONTAINER: Pod Security "restricted", and what scanners
ask on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cdk8s

from flask_backend import validation as v
from flask_backend.config import CHECKSUM_ANNOTATION
from flask_backend.contract import (
    METRICS_DIR,
    METRICS_PORT_NAME,
    METRICS_VOLUME,
    PORT_NAME,
    RESERVED_VOLUMES,
    RUN_AS_GROUP,
    RUN_AS_USER,
    SECRETS_DIR,
    SECRETS_VOLUME,
    TMP_DIR,
    TMP_VOLUME,
)
from flask_backend.monitoring import metrics_env

if TYPE_CHECKING:
    # Loaded only where a user's volumes are handled: whoever made them loaded it already, and
    # a synth without volumes (main.py's) is spared loading its jsii assembly (~0.2 s).
    import cdk8s_plus_27 as kplus

    from flask_backend.backend import FlaskBackend

IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# The volume types Pod Security "restricted" admits (pod-security-admission's
# check_restrictedVolumes.go); a hostPath or an NFS share would get the pods refused.
RESTRICTED_VOLUME_TYPES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)


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
    forbid them; the pod may then burst into idle CPU, and checkov's CKV_K8S_11 and kube-score's
    container-resources are skipped on the Deployment and the migration Job, with the reason in
    an annotation). Default: 1000 (one core)."""
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

    Liveness restarts a wedged process and should never check dependencies; readiness takes the
    pod out of the Service (it may check the database); startup covers a slow boot so liveness
    does not kill it. Three paths let each answer its own question; an image with one health
    endpoint gives the same path to all three (``Probes.one_path("/healthz")``), as the
    Kubernetes docs' own examples do.
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
    """Per-probe timeout. Default: 2 (the app's readiness check gives up after 1 s)."""
    startup_failure_threshold: int = 30
    """Startup probes (every 2 s) before the container is restarted. Default: 30 (60 s to boot)."""

    @classmethod
    def one_path(cls, path: str, **timings: int) -> Probes:
        """All three probes on one path (an image with a single health endpoint)."""
        return cls(startup_path=path, readiness_path=path, liveness_path=path, **timings)

    def _validate(self) -> None:
        paths = (self.startup_path, self.readiness_path, self.liveness_path)
        for name, path in zip(
            ("startup_path", "readiness_path", "liveness_path"), paths, strict=True
        ):
            v.url_path(f"probes.{name}", path)
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


# -- validation of the pod-level props ----------------------------------------------------------


def extra_volumes(volumes: Mapping[str, kplus.Volume]) -> dict[str, kplus.Volume]:
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


def extra_container(
    argument: str,
    spec: ExtraContainer,
    *,
    app_resources: Resources,
    image_pull_policy: str,
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
        "imagePullPolicy": image_pull_policy,
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
    resources = spec.resources or extra_container_resources(app_resources)
    v.require_type(f"{argument}.resources", resources, Resources)
    resources._validate()
    container["resources"] = resources_json(resources)
    overrides = v.restricted_security_context(f"{argument}.security_context", spec.security_context)
    container["securityContext"] = {**HARDENED_CONTAINER, **overrides}
    return container


# -- plain data: quantities, containers, pods ---------------------------------------------------


# Quantities in the API server's canonical form ("1", not "1000m"; "1Gi", not "1024Mi"): it
# stores that form, so any other spelling makes every `kubectl apply` patch the Deployment again
# and makes server-side apply report a conflict with a client-side apply of the same manifest.
def quantity_millicores(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def quantity_mebibytes(mebibytes: int) -> str:
    for unit, size in (("Ti", 1024 * 1024), ("Gi", 1024)):
        if mebibytes % size == 0:
            return f"{mebibytes // size}{unit}"
    return f"{mebibytes}Mi"


def resources_json(res: Resources) -> dict[str, Any]:
    requests = {
        "cpu": quantity_millicores(res.cpu_request_millicores),
        "ephemeral-storage": quantity_mebibytes(res.ephemeral_storage_request_gib * 1024),
        "memory": quantity_mebibytes(res.memory_request_mib),
    }
    limits = {
        "ephemeral-storage": quantity_mebibytes(res.ephemeral_storage_limit_gib * 1024),
        "memory": quantity_mebibytes(res.memory_limit_mib),
    }
    if res.cpu_limit_millicores is not None:
        limits["cpu"] = quantity_millicores(res.cpu_limit_millicores)
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


def memory_volume(name: str, size_mib: int) -> dict[str, Any]:
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


def volumes_json(volumes: Mapping[str, kplus.Volume]) -> list[dict[str, Any]]:
    """The user's cdk8s-plus Volumes (by mount path) as JSON, written by cdk8s-plus itself (in
    a scratch pod: a Volume writes itself only as part of a pod), each of a type Pod Security
    "restricted" admits. A few round trips, only with volumes."""
    if not volumes:
        return []
    import cdk8s_plus_27 as kplus

    scratch = cdk8s.Chart(cdk8s.App(), "volumes")
    pod = kplus.Pod(
        scratch,
        "pod",
        volumes=list(volumes.values()),
        containers=[kplus.ContainerProps(image="scratch")],
    )
    written = list(cdk8s.ApiObject.of(pod).to_json()["spec"]["volumes"])
    for path, volume in zip(volumes, written, strict=True):
        kind = next(key for key in volume if key != "name")
        if kind not in RESTRICTED_VOLUME_TYPES:
            raise ValueError(
                f'volumes[{path!r}] must be of a type Pod Security "restricted" admits '
                f"({', '.join(RESTRICTED_VOLUME_TYPES)}), got {kind}"
            )
    return written


def app_container(backend: FlaskBackend, serving: bool) -> dict[str, Any]:
    """The app's container. Serving, it listens, is probed and exports metrics; else
    (migrations) it runs a one-off command with the same image, config, secrets and limits.
    Metrics are the server's: a one-off command neither serves nor writes them, and a metrics
    setting must not change the Job's name (and run the migrations again)."""
    serving_metrics = serving and backend.metrics is not None
    secret_files = backend.secret_name is not None and not backend.secrets_as_env
    env = {
        "PORT": str(backend.port),
        "GRACEFUL_TIMEOUT": str(backend.shutdown.graceful_timeout_seconds),
        "MAX_REQUEST_BYTES": str(backend.max_request_bytes),
        **backend.extra_env,
        **(metrics_env(backend.metrics) if serving_metrics else {}),
    }
    # gunicorn sizes its workers from the CPU the container really has (Downward API): its
    # limit, else its request. Never limits.cpu without a limit: that is the node's CPU.
    cpu_env = (
        _cpu_env("CPU_REQUEST_MILLICORES", "requests.cpu")
        if backend.resources.cpu_limit_millicores is None
        else _cpu_env("CPU_LIMIT_MILLICORES", "limits.cpu")
    )
    # A later envFrom wins: the user's sources first, then the backend's config and secrets.
    env_from = [
        *backend.env_from,
        {"configMapRef": {"name": f"{backend.name}-config"}, "prefix": backend.env_prefix},
    ]
    if backend.secret_name is not None and backend.secrets_as_env:
        # The app reads secrets under the config prefix (FLASK_SECRET_KEY), and the keys
        # were validated under it.
        secret_ref: dict[str, Any] = {"secretRef": {"name": backend.secret_name}}
        if backend.env_prefix:
            secret_ref["prefix"] = backend.env_prefix
        env_from.append(secret_ref)
    mounts: list[dict[str, Any]] = [{"mountPath": TMP_DIR, "name": TMP_VOLUME}]
    if secret_files:
        mounts.append({"mountPath": SECRETS_DIR, "name": SECRETS_VOLUME, "readOnly": True})
    mounts += [
        {"mountPath": path, "name": volume.name} for path, volume in backend.extra_volumes.items()
    ]
    if serving_metrics:
        mounts.append({"mountPath": METRICS_DIR, "name": METRICS_VOLUME})
    container: dict[str, Any] = {
        "env": [{"name": k, "value": value} for k, value in env.items()] + [cpu_env],
        "envFrom": env_from,
        "image": backend.image,
        "imagePullPolicy": backend.image_pull_policy,
        "name": backend.name,
        "resources": resources_json(backend.resources),
        "securityContext": HARDENED_CONTAINER,
        "volumeMounts": mounts,
    }
    if not serving:
        return container
    probes, shutdown = backend.probes, backend.shutdown
    ports = [{"containerPort": backend.port, "name": PORT_NAME}]
    if backend.metrics is not None:
        ports.append({"containerPort": backend.metrics.port, "name": METRICS_PORT_NAME})
    container |= {
        "ports": ports,
        # Startup every 2 s until it passes; liveness and readiness give up after 3
        # failures, Kubernetes' default.
        "startupProbe": _http_probe(
            probes.startup_path,
            backend.port,
            2,
            probes.timeout_seconds,
            probes.startup_failure_threshold,
        ),
        "readinessProbe": _http_probe(
            probes.readiness_path, backend.port, probes.period_seconds, probes.timeout_seconds, 3
        ),
        "livenessProbe": _http_probe(
            probes.liveness_path, backend.port, probes.period_seconds, probes.timeout_seconds, 3
        ),
    }
    if shutdown.pre_stop_sleep_seconds:
        command = ["sleep", str(shutdown.pre_stop_sleep_seconds)]
        container["lifecycle"] = {"preStop": {"exec": {"command": command}}}
    return container


def pod_spec(
    backend: FlaskBackend,
    containers: list[dict[str, Any]],
    init_containers: list[dict[str, Any]],
    serving: bool,
) -> dict[str, Any]:
    """What a hardened pod of this backend is: Pod Security "restricted", no API token, no
    service links, the backend's volumes, pull secrets and scheduling. Serving pods restart
    their containers and spread over nodes and zones; a one-off pod (migrations) does
    neither."""
    volumes = [memory_volume(TMP_VOLUME, backend.resources.tmp_size_mib)]
    if backend.secret_name is not None and not backend.secrets_as_env:
        volumes.append(
            {
                "name": SECRETS_VOLUME,
                "secret": {"defaultMode": 0o440, "secretName": backend.secret_name},
            }
        )
    volumes += backend.extra_volumes_json
    if serving and backend.metrics is not None:
        volumes.append(memory_volume(METRICS_VOLUME, backend.metrics.dir_size_mib))
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
        "serviceAccountName": backend.service_account_name,
        "setHostnameAsFQDN": False,
        "terminationGracePeriodSeconds": backend.shutdown.termination_grace_period_seconds,
        "volumes": volumes,
    }
    if init_containers:
        pod["initContainers"] = init_containers
    if backend.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in backend.image_pull_secrets]
    scheduling = backend.scheduling
    if scheduling.node_selector:
        pod["nodeSelector"] = dict(scheduling.node_selector)
    if scheduling.tolerations:
        pod["tolerations"] = [dict(t) for t in scheduling.tolerations]
    if backend.priority_class_name:
        pod["priorityClassName"] = backend.priority_class_name
    if serving and scheduling.spread:
        selector = {"matchLabels": backend.selector_labels}
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


def native_sidecars(backend: FlaskBackend) -> list[dict[str, Any]]:
    """Sidecars as init containers that keep running (Kubernetes 1.29+): they start before
    the init containers and the app, and stop after it."""
    if not backend.native_sidecars:
        return []
    return [{**c, "restartPolicy": "Always"} for c in backend.sidecars]


def pod_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    result = v.annotation_map("pod_annotations", annotations or {})
    v.yaml_text("pod_annotations", result)
    if CHECKSUM_ANNOTATION in result:
        raise ValueError(
            f"pod_annotations must not set {CHECKSUM_ANNOTATION!r}: the backend computes it "
            "so config changes roll the pods"
        )
    v.pod_map_entries("pod_annotations", result)
    v.annotations_size("pod_annotations", {CHECKSUM_ANNOTATION: "0" * 64, **result})
    return result


def image_pull_secrets(names: Sequence[str]) -> tuple[str, ...]:
    v.require_type("image_pull_secrets", names, (list, tuple))
    return tuple(v.dns_subdomain(f"image_pull_secrets[{i}]", s) for i, s in enumerate(names))


def priority_class_name(name: str | None) -> str | None:
    return None if name is None else v.dns_subdomain("priority_class_name", name)
