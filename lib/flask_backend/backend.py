"""FlaskBackend: a Flask API on Kubernetes, production-safe by default.

The construct composes one module per concern, each owning its options, their validation and
its objects (as cdk8s-plus has a file per kind, and a Helm chart templates/<kind>.yaml):

- shared: the name, labels, selector and namespace every object reads;
- config: the ConfigMap, the Secret, the environment and the checksum that rolls the pods;
- pod: the hardened pod (Resources, Probes, Shutdown, Scheduling, ExtraContainer);
- workload: the Deployment, PodDisruptionBudget and HorizontalPodAutoscaler (Autoscaling);
- service: the Service and the ServiceAccount;
- network_policy: the pods' NetworkPolicy (NetworkPolicyOptions, EgressRule);
- monitoring: Prometheus metrics and the ServiceMonitor (Metrics);
- migrations: the migration Job and its NetworkPolicy (Migrations);
- routing: the HTTPRoute and the Ingress (HttpRoute, GatewayRef, Ingress).
- exemptions: the checkov and kube-score checks an option fails, skipped with their reasons
  on the objects concerned.

Each default answers one production failure: Pod Security "restricted", graceful shutdown,
config-change rollouts, the checkov rules users get flagged on (README: "What the defaults
protect you from").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import cdk8s
from constructs import Construct

from flask_backend import config as cfg
from flask_backend import migrations as mig
from flask_backend import monitoring, pod, routing, service, shared, workload
from flask_backend import network_policy as netpol
from flask_backend import validation as v
from flask_backend.config import EnvFrom
from flask_backend.contract import DEFAULT_MAX_REQUEST_BYTES, DEFAULT_PORT, TMP_VOLUME
from flask_backend.migrations import Migrations
from flask_backend.monitoring import Metrics
from flask_backend.network_policy import NetworkPolicyOptions
from flask_backend.pod import (
    IMAGE_PULL_POLICIES,
    ExtraContainer,
    Probes,
    Resources,
    Scheduling,
    Shutdown,
)
from flask_backend.routing import HttpRoute, Ingress
from flask_backend.workload import Autoscaling

if TYPE_CHECKING:
    import cdk8s_plus_27 as kplus

# Every kind a backend may emit, and its name: claimed in the App whether emitted or not, so two
# backends anywhere in one App never emit the same object twice.
CLAIMED = (
    ("Deployment", "{}"),
    ("Service", "{}"),
    ("ServiceAccount", "{}"),
    ("ConfigMap", "{}-config"),
    ("Secret", "{}-secrets"),
    ("PodDisruptionBudget", "{}"),
    ("NetworkPolicy", "{}"),
    ("NetworkPolicy", "{}-migrations"),
    ("HorizontalPodAutoscaler", "{}"),
    ("ServiceMonitor", "{}"),
    ("Ingress", "{}"),
    ("HTTPRoute", "{}"),
)


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
    ``http_route``. Each is an ordinary ApiObject, so cdk8s's escape hatches work on it
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
        metrics: Metrics | None = None,
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
        :param metrics: Prometheus metrics on their own port, optionally a ServiceMonitor
            (``Metrics()``); only for an image that serves them there (this repository's app
            does: main.py turns them on). Default: - none: no metrics port, volume or
            variables, so a plain Flask image gets no port that nothing listens on.
        :param max_request_bytes: Largest request accepted: passed to the app as
            MAX_REQUEST_BYTES (Flask's MAX_CONTENT_LENGTH refuses a larger body with 413,
            gunicorn a longer request line or header field, within its own 4094/8190-byte
            limits) and, with ``Ingress(class_name="nginx")``, to ingress-nginx as its
            proxy-body-size. Default: 1048576 (1 MiB, nginx's own default).
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
        self.name = shared.backend_name(id, name)
        self.image = image
        self.image_reference = v.image_reference("image", image, allow_latest=allow_latest_tag)
        self.replicas = v.int_in_range("replicas", replicas, 0)
        self.port = v.int_in_range("port", port, 1, 65535)
        self.service_port = v.int_in_range("service_port", service_port, 1, 65535)
        # Config and secrets (config.py).
        v.require_type("secrets_as_env", secrets_as_env, bool)
        self.secrets_as_env = secrets_as_env
        self.env_prefix = cfg.env_prefix(env_prefix)
        self.config = cfg.config_data(config, env_prefix)
        secret_data = cfg.secret_data(
            secrets, existing_secret, prefix=env_prefix, secrets_as_env=secrets_as_env
        )
        self.existing_secret = (
            None if existing_secret is None else v.dns_subdomain("existing_secret", existing_secret)
        )
        self.extra_env = cfg.extra_env(env)
        # The pod (pod.py) and the option groups, each validating itself.
        self.image_pull_policy = v.one_of(
            "image_pull_policy", image_pull_policy, tuple(IMAGE_PULL_POLICIES)
        )
        self.image_pull_secrets = pod.image_pull_secrets(image_pull_secrets)
        self.resources = resources or Resources()
        self.probes = probes or Probes()
        self.shutdown = shutdown or Shutdown()
        self.autoscaling = autoscaling
        self.network_policy_options = network_policy
        self.scheduling = scheduling or Scheduling()
        self.metrics = monitoring.resolve_metrics(metrics, self.port, self.service_port)
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
        self.pod_annotations = pod.pod_annotations(pod_annotations)
        self.extra_volumes = pod.extra_volumes(volumes or {})
        self.extra_volumes_json = pod.volumes_json(self.extra_volumes)
        self.max_request_bytes = v.int_in_range("max_request_bytes", max_request_bytes, 1)
        self.env_from = cfg.env_from_sources(env_from)
        volume_names = {TMP_VOLUME, *(volume.name for volume in self.extra_volumes.values())}
        v.require_type("init_containers", init_containers, (tuple, list))
        v.require_type("sidecars", sidecars, (tuple, list))
        taken = {self.name}

        def extra(argument: str, spec: ExtraContainer) -> dict[str, Any]:
            return pod.extra_container(
                argument,
                spec,
                app_resources=self.resources,
                image_pull_policy=self.image_pull_policy,
                volume_names=volume_names,
                taken=taken,
                allow_latest=allow_latest_tag,
            )

        self.init_containers = [
            extra(f"init_containers[{i}]", c) for i, c in enumerate(init_containers)
        ]
        self.sidecars = [extra(f"sidecars[{i}]", c) for i, c in enumerate(sidecars)]
        v.require_type("native_sidecars", native_sidecars, bool)
        self.native_sidecars = native_sidecars
        self.priority_class_name = pod.priority_class_name(priority_class_name)
        self.existing_service_account = service.existing_service_account(service_account)
        cfg.check_environment(
            port=self.port,
            graceful_timeout_seconds=self.shutdown.graceful_timeout_seconds,
            metrics=self.metrics,
            max_request_bytes=self.max_request_bytes,
            extra=self.extra_env,
            config=self.config,
            secrets=secret_data if secrets_as_env else None,
            prefix=env_prefix,
        )
        self.migrations = migrations
        if migrations is not None:
            v.require_type("migrations", migrations, Migrations)
            migrations._validate()
        self.labels = shared.recommended_labels(
            self.name, self.image_reference, version, component, part_of
        )
        self.config_checksum = cfg.config_checksum(self.config, secret_data, self.existing_secret)

        # Where the objects land, and what is already there.
        chart, facts = shared.chart_facts(scope)
        self.namespace = namespace = facts.namespace
        if namespace is not None and namespace.startswith("kube-"):
            # kube-system and the other kube-* namespaces hold the cluster's own components.
            raise ValueError(
                f"namespace (of chart {chart.node.id!r}) must not start with 'kube-', which "
                f"Kubernetes reserves for its own components, got {namespace!r}"
            )
        self.identity = shared.Identity(self.name, self.labels, namespace)
        self.selector_labels = self.identity.selector_labels
        self.ingress_options = ingress
        self.http_route_options = http_route
        self.router_namespaces = routing.router_namespaces(
            ingress,
            http_route,
            namespace,
            admits_some_namespaces=bool(network_policy and network_policy.ingress_namespaces),
        )
        if self.name == "kubernetes" and namespace in (None, "default"):
            raise ValueError(
                "name must not be 'kubernetes' in the default namespace: the backend's Service "
                "would overwrite the API server's, got 'kubernetes'"
            )
        # Names come from `name`, not from ids (unique among siblings only).
        emitted = v.claim_objects(
            facts.app,
            self,
            [(kind, pattern.format(self.name), namespace) for kind, pattern in CLAIMED],
            argument="name",
            value=self.name,
        )
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

        # 2. What a backend is: its objects, in the order they are written.
        self.service_account_name = self.existing_service_account or self.name
        self.service_account = shared.emit_if(
            self, "service-account", service.service_account(self)
        )
        self.config_map = shared.emit(self, "config", cfg.config_map(self))
        self.secret: cdk8s.ApiObject | None = None
        if secrets is not None:
            self.secret = shared.emit(self, "secret", cfg.secret(self, secret_data))
        self.secret_name = self.existing_secret or (f"{self.name}-secrets" if self.secret else None)
        # Built before the Deployment, whose pods wait for it; emitted after it, with its policy.
        job = mig.job(self)
        self.deployment = shared.emit(self, "deployment", workload.deployment(self, job))
        self.service = shared.emit(self, "service", service.service(self))
        self.pod_disruption_budget = shared.emit_if(
            self, "pod-disruption-budget", workload.pod_disruption_budget(self)
        )
        app_policy = netpol.network_policy(self)
        self.network_policy = shared.emit_if(self, "network-policy", app_policy)
        self.horizontal_pod_autoscaler = shared.emit_if(
            self, "autoscaler", workload.horizontal_pod_autoscaler(self)
        )
        self.service_monitor = shared.emit_if(
            self, "service-monitor", monitoring.service_monitor(self)
        )
        self.migration_job = shared.emit_if(self, "migration-job", job)
        self.migration_network_policy = shared.emit_if(
            self,
            "migration-network-policy",
            mig.network_policy(self, app_policy, job),
        )
        self.ingress = shared.emit_if(self, "ingress", routing.ingress(self))
        self.http_route = shared.emit_if(self, "http-route", routing.http_route(self))

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
