"""Bad input to FlaskBackend: rejected before anything exists, with a message that helps.

Every message is one line that names the argument, shows the bad value and says what is allowed;
no secret value ever appears in one. `rejected()` checks all of that, and that the chart is left
untouched (no child construct, nothing to synthesize), for every case in this file.
"""

from __future__ import annotations

from typing import Any

import cdk8s
import cdk8s_plus_27 as kplus
import pytest
import yaml

from flask_backend import (
    Autoscaling,
    EgressRule,
    FlaskBackend,
    Metrics,
    NetworkPolicyOptions,
    Probes,
    Resources,
    Scheduling,
    Shutdown,
)
from flask_backend.contract import RESERVED_ENV
from tests.support import FAKE_SECRETS, IMAGE

REPOSITORY = "registry.example.com/team/api"
# Distinctive, so its absence from a message proves something.
SECRET_VALUE = "zq-fake-secret-value-7f3a9c-0123456789"
MIB = 1024 * 1024

DNS_LABEL_RULE = (
    "must be a DNS label of at most 63 characters (lowercase letters, digits and '-', "
    "start with a letter, end with a letter or digit)"
)
DNS_1123_LABEL_RULE = (
    "must be a DNS label of at most 63 characters (lowercase letters, digits and '-', "
    "start with a letter or digit, end with a letter or digit)"
)
SUBDOMAIN_RULE = (
    "must be a DNS subdomain of at most 253 characters (lowercase letters, digits, '-' and '.')"
)
LABEL_VALUE_RULE = (
    "must be a label value of at most 63 characters (letters, digits, '-', '_' and '.', "
    "starting and ending with a letter or digit)"
)
IMAGE_RULE = (
    "image must be an image reference like 'registry.example.com/team/api:1.4.2' "
    "or 'repo/api@sha256:<64 hex>'"
)
KEY_RULE = "key must be 1 to 253 letters, digits, '-', '_' and '.'"
C_IDENTIFIER_RULE = (
    "which must be a C identifier (letters, digits, '_'; no leading digit): "
    "Kubernetes would silently skip it"
)
ANNOTATION_KEY_RULE = (
    "key must be a qualified name with an optional DNS-subdomain prefix (e.g. 'example.com/my-key')"
)


def rejected(error: type[Exception], *, id: str = "api", **props: Any) -> str:
    """Call FlaskBackend with `props` and return the message of the `error` it must raise.

    A distinctive secret rides along unless the case is about secrets, so every message is
    checked for it. The chart must be as it was: no half-built construct, nothing to synthesize.
    """
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "test", namespace="backend", disable_resource_name_hashes=True)
    if "secrets" not in props and "existing_secret" not in props:
        props["secrets"] = {"SECRET_KEY": SECRET_VALUE}

    with pytest.raises(error) as raised:
        FlaskBackend(chart, id, **{"image": IMAGE, **props})

    message = str(raised.value)
    assert type(raised.value) is error, "a ValueError or TypeError, never a jsii error"
    assert "\n" not in message
    for secret in (SECRET_VALUE, *FAKE_SECRETS.values()):
        assert secret not in message
    assert list(chart.node.children) == []
    assert [d for d in yaml.safe_load_all(app.synth_yaml()) if d] == []
    return message


def volume_elsewhere(name: str) -> kplus.Volume:
    """A volume built in a throwaway chart, so the chart under test starts empty."""
    return kplus.Volume.from_empty_dir(cdk8s.Chart(cdk8s.App(), "elsewhere"), name, name)


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Api", "1api", "api-", "-api", "my_api", "my.api", "", "a" * 64])
def test_name_must_be_a_dns_1035_label_of_at_most_63_characters(name: str) -> None:
    message = rejected(ValueError, name=name)

    assert message == f"name {DNS_LABEL_RULE}, got {name!r}"


def test_construct_id_used_as_name_must_be_a_dns_label() -> None:
    message = rejected(ValueError, id="Orders_API")

    assert message == f"name {DNS_LABEL_RULE}, got 'Orders_API'"


def test_rejected_backend_can_be_retried_with_the_same_id() -> None:
    # Given a chart where a FlaskBackend was rejected
    chart = cdk8s.Chart(cdk8s.App(), "test")
    with pytest.raises(ValueError, match="replicas"):
        FlaskBackend(chart, "api", image=IMAGE, replicas=-1)

    # When the caller fixes the input and tries again with the same id
    backend = FlaskBackend(chart, "api", image=IMAGE, replicas=2)

    # Then it works: the rejected call left nothing behind
    assert backend.node.path == "test/api"


# -- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("argument", ["port", "service_port"])
@pytest.mark.parametrize("port", [0, -1, 65536, 100_000])
def test_ports_must_be_between_1_and_65535(argument: str, port: int) -> None:
    message = rejected(ValueError, **{argument: port})

    assert message == f"{argument} must be between 1 and 65535, got {port}"


def test_the_metrics_port_must_not_be_the_service_port() -> None:
    # Two Service ports 80: the API server refuses the Service.
    message = rejected(ValueError, service_port=80, metrics=Metrics(port=80))

    assert message == (
        "metrics.port must differ from service_port (80): the Service would have two ports "
        "80, which the API server refuses; got 80"
    )


def test_replicas_must_not_be_negative() -> None:
    assert rejected(ValueError, replicas=-1) == "replicas must be >= 0, got -1"


WRONG_TYPES = [
    ({"replicas": "2"}, "replicas must be int, got str '2'"),
    ({"replicas": True}, "replicas must be an int, got True"),
    ({"replicas": 2.0}, "replicas must be int, got float 2.0"),
    ({"replicas": None}, "replicas must be int, got NoneType None"),
    ({"port": "8000"}, "port must be int, got str '8000'"),
    ({"image": None}, "image must be str, got NoneType None"),
    ({"name": 7}, "name must be str, got int 7"),
    (
        {"config": [("LOG_LEVEL", "debug")]},
        "config must be Mapping, got list [('LOG_LEVEL', 'debug')]",
    ),
    ({"config": {"LOG_LEVEL": 10}}, "config['LOG_LEVEL'] must be str, got int 10"),
    ({"config": {1: "x"}}, "config key must be str, got int 1"),
    ({"env": {"WORKERS": 4}}, "env['WORKERS'] must be str, got int 4"),
    ({"secrets_as_env": "yes"}, "secrets_as_env must be bool, got str 'yes'"),
    (
        {"image_pull_secrets": "regcred"},
        "image_pull_secrets must be list or tuple, got str 'regcred'",
    ),
    ({"resources": {"cpu": 1}}, "resources must be Resources, got dict {'cpu': 1}"),
    ({"autoscaling": True}, "autoscaling must be Autoscaling, got bool True"),
    (
        {"resources": Resources(memory_limit_mib="512Mi")},  # type: ignore[arg-type]
        "resources.memory_limit_mib must be int, got str '512Mi'",
    ),
    (
        {"shutdown": Shutdown(graceful_timeout_seconds=2.5)},  # type: ignore[arg-type]
        "shutdown.graceful_timeout_seconds must be int, got float 2.5",
    ),
    (
        {"network_policy": NetworkPolicyOptions(ingress_namespaces="frontend")},  # type: ignore[arg-type]
        "network_policy.ingress_namespaces must be tuple or list, got str 'frontend'",
    ),
    (
        {"network_policy": NetworkPolicyOptions(egress=EgressRule("db", (5432,)))},  # type: ignore[arg-type]
        "network_policy.egress must be tuple or list, got EgressRule "
        "EgressRule(namespace='db', ports=(5432,), pod_labels={})",
    ),
    (
        {"network_policy": NetworkPolicyOptions(egress=(EgressRule("db", 5432),))},  # type: ignore[arg-type]
        "network_policy.egress[0].ports must be tuple or list, got int 5432",
    ),
    ({"scheduling": Scheduling(spread="yes")}, "scheduling.spread must be bool, got str 'yes'"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("props", "expected"),
    WRONG_TYPES,
    ids=[expected.split(" must")[0] for _, expected in WRONG_TYPES],
)
def test_wrong_types_raise_type_error(props: dict[str, Any], expected: str) -> None:
    assert rejected(TypeError, **props) == expected


# -- config and secret keys ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["LOG-LEVEL", "log.level", "..data", "."])
def test_config_keys_must_make_c_identifier_environment_variables(key: str) -> None:
    message = rejected(ValueError, config={key: "x"})

    assert message == (
        f"config key {key!r} becomes the environment variable {'FLASK_' + key!r}, "
        f"{C_IDENTIFIER_RULE}"
    )


def test_config_key_must_not_start_with_a_digit_without_a_prefix() -> None:
    message = rejected(ValueError, config={"1ST_RUN": "x"}, env_prefix="")

    assert message == (
        f"config key '1ST_RUN' becomes the environment variable '1ST_RUN', {C_IDENTIFIER_RULE}"
    )


@pytest.mark.parametrize("argument", ["config", "secrets"])
@pytest.mark.parametrize("key", ["a/b", "", "key with space", "A" * 254, "clé"])
def test_config_and_secret_keys_must_be_valid_object_keys(argument: str, key: str) -> None:
    message = rejected(ValueError, **{argument: {key: SECRET_VALUE}})

    assert message == f"{argument} {KEY_RULE}, got {key!r}"


@pytest.mark.parametrize("key", [".", "..", "..data", "..2024_01_31"])
def test_secret_file_names_must_not_be_dot_or_start_with_two_dots(key: str) -> None:
    message = rejected(ValueError, secrets={key: SECRET_VALUE})

    assert message == f"secrets key must not be '.' or start with '..', got {key!r}"


def test_secret_keys_must_make_c_identifiers_when_passed_as_env() -> None:
    message = rejected(ValueError, secrets={"tls.crt": SECRET_VALUE}, secrets_as_env=True)

    assert message == (
        f"secrets key 'tls.crt' becomes the environment variable 'FLASK_tls.crt', "
        f"{C_IDENTIFIER_RULE}"
    )


def test_config_is_limited_to_1_mib() -> None:
    message = rejected(ValueError, config={"BIG": "x" * MIB})

    assert message == (
        f"config holds {MIB + 3} bytes, more than the {MIB} bytes (1 MiB) Kubernetes stores "
        "in one object"
    )


def test_secrets_are_limited_to_1_mib_without_showing_a_value() -> None:
    value = SECRET_VALUE + "x" * MIB

    message = rejected(ValueError, secrets={"SECRET_KEY": value})

    size = len("SECRET_KEY") + len(value)
    assert message == (
        f"secrets holds {size} bytes, more than the {MIB} bytes (1 MiB) Kubernetes stores "
        "in one object"
    )


def test_data_of_exactly_1_mib_is_accepted() -> None:
    # In 16 values: one of 1 MiB would be too big for an environment variable (execve).
    chart = cdk8s.Chart(cdk8s.App(), "test")
    config = {f"K{i:02d}": "x" * (MIB // 16 - 3) for i in range(16)}

    backend = FlaskBackend(chart, "api", image=IMAGE, config=config)

    assert backend.config_map is not None


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ({"SECRET_KEY": SECRET_VALUE.encode()}, "secrets['SECRET_KEY'] must be str, got bytes"),
        ({"SECRET_KEY": True}, "secrets['SECRET_KEY'] must be str, got bool"),
        (f"SECRET_KEY={SECRET_VALUE}", "secrets must be Mapping, got str"),
        ([("SECRET_KEY", SECRET_VALUE)], "secrets must be Mapping, got list"),
    ],
    ids=["bytes", "bool", "str", "list"],  # not the values: test ids end up in logs too
)
def test_wrong_secret_types_never_show_the_value(secrets: Any, expected: str) -> None:
    assert rejected(TypeError, secrets=secrets) == expected


YAML_RULE = (
    "must not hold U+007F-U+009F, U+2028, U+2029, U+FFFE, U+FFFF or lone surrogates "
    "(YAML manifests cannot carry them intact)"
)


@pytest.mark.parametrize("argument", ["config", "env", "pod_annotations"])
@pytest.mark.parametrize(
    ("character", "code"),
    [
        ("\x7f", "007F"),
        ("\x85", "0085"),
        ("\x9f", "009F"),
        ("\u2028", "2028"),
        ("\uffff", "FFFF"),
        ("\ud800", "D800"),
    ],
)
def test_values_must_survive_a_yaml_manifest(argument: str, character: str, code: str) -> None:
    # cdk8s writes these unescaped: kubectl rejects the file, or reads a line break instead.
    message = rejected(ValueError, **{argument: {"KEY": f"ab{character}c"}})

    assert message == f"{argument}['KEY'] {YAML_RULE}, got U+{code} at index 2"


@pytest.mark.parametrize("character", ["\x7f", "\x85", "\u2029", "\ufffe", "\udfff"])
def test_secret_values_must_survive_a_yaml_manifest_and_are_never_shown(character: str) -> None:
    message = rejected(ValueError, secrets={"SECRET_KEY": f"{SECRET_VALUE}{character}"})

    assert message == f"secrets['SECRET_KEY'] {YAML_RULE}"


def test_secrets_and_existing_secret_are_exclusive() -> None:
    message = rejected(
        ValueError, secrets={"SECRET_KEY": SECRET_VALUE}, existing_secret="api-credentials"
    )

    assert message == (
        "secrets and existing_secret are exclusive: pass the values or the name of a Secret "
        "managed elsewhere, got both (existing_secret='api-credentials')"
    )


@pytest.mark.parametrize("name", ["Api_Credentials", "api credentials", "", "-api"])
def test_existing_secret_must_be_a_dns_subdomain(name: str) -> None:
    message = rejected(ValueError, existing_secret=name)

    assert message == f"existing_secret {SUBDOMAIN_RULE}, got {name!r}"


@pytest.mark.parametrize("prefix", ["FLASK-", "1_", "FLASK_ "])
def test_env_prefix_must_be_empty_or_a_c_identifier(prefix: str) -> None:
    message = rejected(ValueError, env_prefix=prefix)

    assert message == f"env_prefix must be empty or a C identifier, got {prefix!r}"


def test_env_keys_must_be_c_identifiers() -> None:
    message = rejected(ValueError, env={"FEATURE-FLAGS": "search"})

    assert message == "env key must be a C identifier, got 'FEATURE-FLAGS'"


def test_config_must_not_make_a_variable_the_backend_reserves() -> None:
    # SECRETS_DIR would move where the app reads its secrets from, away from the mounted Secret.
    message = rejected(ValueError, config={"SECRETS_DIR": "/x"}, env_prefix="")

    assert message == (
        "config must not make the environment variable 'SECRETS_DIR', which the backend "
        f"reserves ({', '.join(RESERVED_ENV)})"
    )


@pytest.mark.parametrize("key", RESERVED_ENV)
def test_env_must_not_shadow_what_the_backend_reserves(key: str) -> None:
    # The variables the backend sets carry the contract with the app (overriding PORT would
    # point the probes elsewhere); SECRETS_DIR, which it does not set, would move where the app
    # reads its secrets from.
    message = rejected(ValueError, env={key: "1"})

    assert message == (
        f"env key must not be one the backend reserves ({', '.join(RESERVED_ENV)}), got {key!r}"
    )


# -- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        f"{IMAGE} ",
        "registry.example.com/Team/api:1.4.2",
        "registry.example.com//api:1.4.2",
        f"{REPOSITORY}:",
        f"{REPOSITORY}:-1",
        f"{REPOSITORY}:é1",
        f"{REPOSITORY}@sha256:abc",
        f"{REPOSITORY}:{'1' * 129}",
        "",
    ],
)
def test_image_must_be_a_well_formed_reference(image: str) -> None:
    assert rejected(ValueError, image=image) == f"{IMAGE_RULE}, got {image!r}"


@pytest.mark.parametrize("image", [REPOSITORY, "api", "localhost:5000/api"])
def test_image_must_pin_a_tag_or_a_digest(image: str) -> None:
    message = rejected(ValueError, image=image)

    assert message == f"image must pin a tag or a digest (e.g. '{image}:1.0.0'), got {image!r}"


def test_latest_tag_is_rejected_unless_allowed() -> None:
    message = rejected(ValueError, image=f"{REPOSITORY}:latest")

    assert message == (
        f"image uses the mutable tag 'latest' ('{REPOSITORY}:latest'); pin a version or digest, "
        "or pass allow_latest_tag=True"
    )


@pytest.mark.parametrize("digest", ["a" * 63, "a" * 65, "A" * 64, "0123456789ABCDEF" * 4])
def test_sha256_digest_must_be_64_lowercase_hex_digits(digest: str) -> None:
    message = rejected(ValueError, image=f"{REPOSITORY}@sha256:{digest}")

    assert message == (
        f"image digest must be 'sha256:' and 64 lowercase hex digits, got 'sha256:{digest}'"
    )


@pytest.mark.parametrize("policy", ["always", "Sometimes", ""])
def test_image_pull_policy_must_be_a_kubernetes_one(policy: str) -> None:
    message = rejected(ValueError, image_pull_policy=policy)

    assert message == (
        f"image_pull_policy must be one of 'Always', 'IfNotPresent', 'Never', got {policy!r}"
    )


def test_image_pull_secrets_must_be_secret_names() -> None:
    message = rejected(ValueError, image_pull_secrets=["regcred", "Reg_Cred"])

    assert message == f"image_pull_secrets[1] {SUBDOMAIN_RULE}, got 'Reg_Cred'"


# -- labels ------------------------------------------------------------------------------------


@pytest.mark.parametrize("argument", ["version", "component", "part_of"])
@pytest.mark.parametrize("value", ["1.0/beta", "-1", "back end", "v" * 64, "été"])
def test_label_values_must_be_valid(argument: str, value: str) -> None:
    message = rejected(ValueError, **{argument: value})

    assert message == f"{argument} {LABEL_VALUE_RULE}, got {value!r}"


# -- option groups -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shutdown", "expected"),
    [
        (
            Shutdown(pre_stop_sleep_seconds=-1),
            "shutdown.pre_stop_sleep_seconds must be between 0 and 300, got -1",
        ),
        (
            Shutdown(graceful_timeout_seconds=0),
            "shutdown.graceful_timeout_seconds must be between 1 and 3600, got 0",
        ),
        (
            Shutdown(graceful_timeout_seconds=-5),
            "shutdown.graceful_timeout_seconds must be between 1 and 3600, got -5",
        ),
        (Shutdown(margin_seconds=0), "shutdown.margin_seconds must be between 1 and 300, got 0"),
        (Shutdown(margin_seconds=-1), "shutdown.margin_seconds must be between 1 and 300, got -1"),
    ],
)
def test_shutdown_numbers_must_add_up_to_a_real_grace_period(
    shutdown: Shutdown, expected: str
) -> None:
    assert rejected(ValueError, shutdown=shutdown) == expected


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (
            Resources(cpu_request_millicores=2000),
            "resources.cpu_request_millicores must be <= resources.cpu_limit_millicores (1000), "
            "got 2000",
        ),
        (
            Resources(memory_request_mib=512),
            "resources.memory_request_mib must be <= resources.memory_limit_mib (256), got 512",
        ),
        (
            Resources(ephemeral_storage_request_gib=2),
            "resources.ephemeral_storage_request_gib must be <= "
            "resources.ephemeral_storage_limit_gib (1), got 2",
        ),
        (
            Resources(cpu_request_millicores=5),
            "resources.cpu_request_millicores must be >= 10, got 5",
        ),
        (
            Resources(memory_request_mib=8, memory_limit_mib=8),
            "resources.memory_request_mib must be >= 16, got 8",
        ),
        (
            Resources(tmp_size_mib=256),
            "resources.tmp_size_mib must be below resources.memory_limit_mib (256): /tmp is "
            "memory-backed, got 256",
        ),
    ],
)
def test_resource_requests_must_fit_their_limits(resources: Resources, expected: str) -> None:
    assert rejected(ValueError, resources=resources) == expected


@pytest.mark.parametrize(
    ("autoscaling", "expected"),
    [
        (
            Autoscaling(min_replicas=5, max_replicas=3),
            "autoscaling.max_replicas must be >= autoscaling.min_replicas (5), got 3",
        ),
        (Autoscaling(min_replicas=0), "autoscaling.min_replicas must be >= 1, got 0"),
        (
            Autoscaling(cpu_utilization_percent=0),
            "autoscaling.cpu_utilization_percent must be between 1 and 1000, got 0",
        ),
    ],
)
def test_autoscaling_bounds_must_make_sense(autoscaling: Autoscaling, expected: str) -> None:
    assert rejected(ValueError, autoscaling=autoscaling) == expected


@pytest.mark.parametrize(
    ("probes", "expected"),
    [
        (
            Probes(readiness_path="readyz"),
            "probes.readiness_path must be an absolute URL path (letters, digits and "
            "-._~!$&'()*+,;=:@/%?), got 'readyz'",
        ),
        (
            Probes(liveness_path="/live z"),
            "probes.liveness_path must be an absolute URL path (letters, digits and "
            "-._~!$&'()*+,;=:@/%?), got '/live z'",
        ),
        (Probes(period_seconds=0), "probes.period_seconds must be between 1 and 3600, got 0"),
    ],
)
def test_probes_must_be_absolute_paths(probes: Probes, expected: str) -> None:
    assert rejected(ValueError, probes=probes) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            NetworkPolicyOptions(ingress_namespaces=("frontend", "Web")),
            f"network_policy.ingress_namespaces[1] {DNS_1123_LABEL_RULE}, got 'Web'",
        ),
        (
            NetworkPolicyOptions(egress=(EgressRule("database", ()),)),
            "network_policy.egress[0].ports must not be empty, got ()",
        ),
        (
            NetworkPolicyOptions(egress=(EgressRule("database", (5432, 70000)),)),
            "network_policy.egress[0].ports must be between 1 and 65535, got 70000",
        ),
        (
            NetworkPolicyOptions(egress=(EgressRule("Database", (5432,)),)),
            f"network_policy.egress[0].namespace {DNS_1123_LABEL_RULE}, got 'Database'",
        ),
        (
            NetworkPolicyOptions(egress=(EgressRule("database", (5432,), {"app name": "pg"}),)),
            f"network_policy.egress[0].pod_labels {ANNOTATION_KEY_RULE}, got 'app name'",
        ),
        (
            NetworkPolicyOptions(egress=(EgressRule("database", (5432,), {"app": "pg sql"}),)),
            f"network_policy.egress[0].pod_labels['app'] {LABEL_VALUE_RULE}, got 'pg sql'",
        ),
    ],
)
def test_network_policy_options_must_be_valid(options: NetworkPolicyOptions, expected: str) -> None:
    assert rejected(ValueError, network_policy=options) == expected


@pytest.mark.parametrize(
    ("scheduling", "expected"),
    [
        (
            Scheduling(tolerations=[{"key": "dedicated", "effects": "NoSchedule"}]),
            "scheduling.tolerations[0] has unknown fields ['effects']; allowed: key, operator, "
            "value, effect, tolerationSeconds",
        ),
        (
            Scheduling(node_selector={"kubernetes.io/arch": "arm 64"}),
            f"scheduling.node_selector['kubernetes.io/arch'] {LABEL_VALUE_RULE}, got 'arm 64'",
        ),
        (
            Scheduling(node_selector={"Bad Key": "x"}),
            f"scheduling.node_selector {ANNOTATION_KEY_RULE}, got 'Bad Key'",
        ),
    ],
)
def test_scheduling_options_must_be_valid(scheduling: Scheduling, expected: str) -> None:
    assert rejected(ValueError, scheduling=scheduling) == expected


def test_pod_annotation_keys_must_be_qualified_names() -> None:
    message = rejected(ValueError, pod_annotations={"prometheus.io/scrape now": "true"})

    assert message == f"pod_annotations {ANNOTATION_KEY_RULE}, got 'prometheus.io/scrape now'"


def test_pod_annotations_must_not_override_the_config_checksum() -> None:
    message = rejected(ValueError, pod_annotations={"checksum/config": "pinned"})

    assert message == (
        "pod_annotations must not set 'checksum/config': the backend computes it so config "
        "changes roll the pods"
    )


@pytest.mark.parametrize("path", ["data", "tmp", ""])
def test_extra_volumes_need_an_absolute_path(path: str) -> None:
    message = rejected(ValueError, volumes={path: volume_elsewhere("data")})

    assert message == f"volumes key must be an absolute path, got {path!r}"


@pytest.mark.parametrize("name", ["tmp", "secrets", "metrics"])
def test_extra_volumes_must_not_reuse_the_backend_volume_names(name: str) -> None:
    message = rejected(ValueError, volumes={"/data": volume_elsewhere(name)})

    assert message == (
        "volumes['/data'] name must not be one the backend uses (tmp, secrets, metrics), "
        f"got {name!r}"
    )


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda scope: kplus.Volume.from_host_path(scope, "root", "root", path="/"), "hostPath"),
        (
            lambda scope: kplus.Volume.from_nfs(
                scope, "share", "share", server="nfs.example.com", path="/export"
            ),
            "nfs",
        ),
    ],
)
def test_extra_volumes_must_be_of_a_type_pod_security_restricted_admits(
    make: Any, kind: str
) -> None:
    # The pods are presented (and labelled, with RestrictedNamespace) as "restricted": a
    # hostPath of / would hand them the node's file system, and admission would refuse them.
    message = rejected(ValueError, volumes={"/data": make(cdk8s.Chart(cdk8s.App(), "elsewhere"))})

    assert message == (
        "volumes['/data'] must be of a type Pod Security \"restricted\" admits (configMap, "
        "csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret), "
        f"got {kind}"
    )


def test_extra_volumes_must_be_volumes() -> None:
    message = rejected(TypeError, volumes={"/data": {"emptyDir": {}}})

    assert message == "volumes['/data'] must be Volume, got dict {'emptyDir': {}}"


# -- limits Kubernetes and the kernel enforce (issue 10) -----------------------------------------

INT32_MAX = 2**31 - 1


@pytest.mark.parametrize(
    ("props", "argument", "value"),
    [
        ({"replicas": 2**64}, "replicas", 2**64),
        ({"replicas": INT32_MAX + 1}, "replicas", INT32_MAX + 1),
        ({"autoscaling": Autoscaling(max_replicas=2**40)}, "autoscaling.max_replicas", 2**40),
        (
            {"autoscaling": Autoscaling(min_replicas=2**31, max_replicas=2**32)},
            "autoscaling.min_replicas",
            2**31,
        ),
        # 1.18e+21Mi was written out: a JavaScript number, not a quantity Kubernetes parses.
        (
            {"resources": Resources(memory_request_mib=2**70, memory_limit_mib=2**70)},
            "resources.memory_request_mib",
            2**70,
        ),
        (
            {"resources": Resources(cpu_limit_millicores=2**53)},
            "resources.cpu_limit_millicores",
            2**53,
        ),
        (
            {"resources": Resources(ephemeral_storage_limit_gib=2**31)},
            "resources.ephemeral_storage_limit_gib",
            2**31,
        ),
    ],
)
def test_integers_must_fit_the_api_servers_int32(
    props: dict[str, Any], argument: str, value: int
) -> None:
    message = rejected(ValueError, **props)

    assert message == (
        f"{argument} must be <= {INT32_MAX} (an int32 in the Kubernetes API), got {value}"
    )


@pytest.mark.parametrize(
    ("props", "argument"),
    [
        ({"pod_annotations": {f"example.com/a{i}": "" for i in range(257)}}, "pod_annotations"),
        (
            {"scheduling": Scheduling(node_selector={f"example.com/k{i}": "" for i in range(257)})},
            "scheduling.node_selector",
        ),
    ],
)
def test_maps_in_the_pod_template_are_capped(props: dict[str, Any], argument: str) -> None:
    message = rejected(ValueError, **props)

    assert message == f"{argument} must hold at most 256 entries, got 257"


def test_pod_annotations_must_fit_the_256_kib_kubernetes_accepts() -> None:
    annotations = {f"example.com/a{i}": "x" * 1200 for i in range(220)}

    message = rejected(ValueError, pod_annotations=annotations)

    size = sum(len(k) + len(v) for k, v in annotations.items()) + len("checksum/config") + 64
    assert message == (
        f"pod_annotations hold {size} bytes with the backend's own, more than the 262144 bytes "
        "(256 KiB) Kubernetes accepts on one object"
    )


@pytest.mark.parametrize(
    ("props", "argument", "variable", "size"),
    [
        ({"config": {"BIG": "x" * 200_000}}, "config", "FLASK_BIG", 200_011),
        ({"env": {"BIG": "x" * 131_070}}, "env", "BIG", 131_075),
        (
            {"secrets": {"SECRET_KEY": SECRET_VALUE + "x" * 140_000}, "secrets_as_env": True},
            "secrets",
            "FLASK_SECRET_KEY",
            len("FLASK_SECRET_KEY") + len(SECRET_VALUE) + 140_000 + 2,
        ),
    ],
)
def test_one_environment_variable_must_fit_what_execve_accepts(
    props: dict[str, Any], argument: str, variable: str, size: int
) -> None:
    # Kubernetes stores it; the container then fails with E2BIG at every start.
    message = rejected(ValueError, **props)

    assert message == (
        f"{argument} makes the environment variable {variable!r} of {size} bytes, more than the "
        "131072 bytes Linux execve accepts for one (the container would fail with E2BIG); mount "
        "it as a file instead"
    )


def test_the_whole_environment_must_fit_what_execve_accepts() -> None:
    env = {f"VAR_{i:02d}": "x" * 100_000 for i in range(25)}

    message = rejected(ValueError, env=env)

    assert message.startswith("the backend, env, config make ")
    assert message.endswith(
        "bytes of environment variables, more than the 2031616 bytes Linux execve leaves them "
        "under the usual 8 MiB stack (the container would fail with E2BIG); mount large values "
        "as files instead"
    )


@pytest.mark.parametrize(
    ("props", "argument", "variable"),
    [
        ({"config": {"ODD": "a\x00b"}}, "config", "FLASK_ODD"),
        ({"env": {"ODD": "a\x00b"}}, "env", "ODD"),
        (
            {"secrets": {"SECRET_KEY": SECRET_VALUE + "\x00"}, "secrets_as_env": True},
            "secrets",
            "FLASK_SECRET_KEY",
        ),
    ],
)
def test_environment_values_must_not_hold_nul(
    props: dict[str, Any], argument: str, variable: str
) -> None:
    message = rejected(ValueError, **props)

    assert message == (
        f"{argument} makes the environment variable {variable!r} hold U+0000, which no "
        "environment variable can carry (execve would fail with EINVAL)"
    )


@pytest.mark.parametrize(
    ("digest", "expected"),
    [
        ("md5:" + "a" * 32, "image digest must use sha256, sha384 or sha512"),
        ("sha1:" + "a" * 40, "image digest must use sha256, sha384 or sha512"),
        ("sha512:" + "a" * 64, "image digest must be 'sha512:' and 128 lowercase hex digits"),
        ("sha384:" + "a" * 64, "image digest must be 'sha384:' and 96 lowercase hex digits"),
        ("sha512:" + "A" * 128, "image digest must be 'sha512:' and 128 lowercase hex digits"),
        ("sha256:" + "a" * 128, "image digest must be 'sha256:' and 64 lowercase hex digits"),
    ],
)
def test_image_digest_must_be_a_real_algorithm_of_its_length(digest: str, expected: str) -> None:
    message = rejected(ValueError, image=f"{REPOSITORY}@{digest}")

    assert message == f"{expected}, got {digest!r}"


RESERVED_PATH_RULE = (
    "volumes key must be a path neither on, inside nor above /tmp, /run/secrets and "
    "/run/metrics (the backend mounts those)"
)


@pytest.mark.parametrize(
    "path",
    [
        "/tmp",
        "/tmp/",
        "/tmp/.",
        "//tmp",
        "///tmp//",
        "/var/../tmp",
        "/run/secrets",
        "/run/secrets/",
        "/run//secrets",
        "/run/secrets/extra",
        "/run/metrics",
        "/run/metrics/x",
        "/tmp/cache",
        "/run",
        "/",
    ],
)
def test_extra_volumes_must_stay_off_the_backend_mount_paths(path: str) -> None:
    # The check runs on the normalised path: '/tmp/' is /tmp, and mounting over /run or / would
    # hide (or need a mount point inside) the backend's own volumes.
    message = rejected(ValueError, volumes={path: volume_elsewhere("data")})

    assert message == f"{RESERVED_PATH_RULE}, got {path!r}"


def test_extra_volumes_must_not_share_a_mount_path_once_normalised() -> None:
    data = volume_elsewhere("data")

    message = rejected(ValueError, volumes={"/data": data, "/data/": data})

    assert (
        message == "volumes key '/data/' is the mount path '/data' given twice; one volume per path"
    )


@pytest.mark.parametrize("path", ["/data\x7f", "/da\u2028ta", "/data\n", "/da\tta"])
def test_mount_paths_must_not_hold_control_characters(path: str) -> None:
    message = rejected(ValueError, volumes={path: volume_elsewhere("data")})

    assert message.startswith(
        "volumes key must not hold control characters, U+2028, U+2029, U+FFFE, U+FFFF or lone "
        "surrogates, got U+"
    )


def test_extra_volume_names_must_be_dns_labels() -> None:
    message = rejected(ValueError, volumes={"/data": volume_elsewhere("Data_1")})

    assert message == f"volumes['/data'] name {DNS_1123_LABEL_RULE}, got 'Data_1'"


def test_two_extra_volumes_must_not_share_a_name() -> None:
    volumes = {"/a": volume_elsewhere("data"), "/b": volume_elsewhere("data")}

    message = rejected(ValueError, volumes=volumes)

    assert message == (
        "volumes['/b'] name 'data' is already the name of another volume; volume names must be "
        "unique in a pod"
    )


PROBE_PATH_RULE = "must be an absolute URL path (letters, digits and -._~!$&'()*+,;=:@/%?)"


@pytest.mark.parametrize(
    ("path", "code"), [("/live\x7fz", "007F"), ("/live\u2028z", "2028"), ("/live\tz", "0009")]
)
def test_probe_paths_must_not_hold_control_characters(path: str, code: str) -> None:
    message = rejected(ValueError, probes=Probes(liveness_path=path))

    assert message == (
        "probes.liveness_path must not hold control characters, U+2028, U+2029, U+FFFE, U+FFFF "
        f"or lone surrogates, got U+{code} at index 5"
    )


@pytest.mark.parametrize("path", ["/live z", "/livé", "/live#z", '/live"z'])
def test_probe_paths_must_be_url_paths(path: str) -> None:
    message = rejected(ValueError, probes=Probes(liveness_path=path))

    assert message == f"probes.liveness_path {PROBE_PATH_RULE}, got {path!r}"


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        (
            {"key": "dedicated", "value": "api\u2028x"},
            "scheduling.tolerations[0].value must not hold control characters, U+2028, U+2029, "
            "U+FFFE, U+FFFF or lone surrogates, got U+2028 at index 3",
        ),
        (
            {"key": "dedi\x7fcated", "operator": "Exists"},
            "scheduling.tolerations[0].key must not hold control characters, U+2028, U+2029, "
            "U+FFFE, U+FFFF or lone surrogates, got U+007F at index 4",
        ),
        (
            {"key": "dedicated team", "operator": "Exists"},
            f"scheduling.tolerations[0].key {ANNOTATION_KEY_RULE}, got 'dedicated team'",
        ),
        (
            {"key": "dedicated", "operator": "Sometimes"},
            "scheduling.tolerations[0].operator must be one of '', 'Equal', 'Exists', "
            "got 'Sometimes'",
        ),
        (
            {"key": "dedicated", "value": "api", "effect": "NoSchedul"},
            "scheduling.tolerations[0].effect must be one of '', 'NoSchedule', "
            "'PreferNoSchedule', 'NoExecute', got 'NoSchedul'",
        ),
        (
            {"key": "dedicated", "operator": "Exists", "value": "api"},
            "scheduling.tolerations[0].value must be empty when operator is 'Exists', got 'api'",
        ),
        (
            {"value": "api"},
            "scheduling.tolerations[0].key must be set unless operator is 'Exists', got ''",
        ),
        (
            {"key": "dedicated", "value": "api team"},
            f"scheduling.tolerations[0].value {LABEL_VALUE_RULE}, got 'api team'",
        ),
        (
            {"operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 30},
            "scheduling.tolerations[0].tolerationSeconds needs effect 'NoExecute', "
            "got effect 'NoSchedule'",
        ),
        (
            {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2**63},
            f"scheduling.tolerations[0].tolerationSeconds must be an int64, got {2**63}",
        ),
    ],
)
def test_tolerations_are_checked_like_the_api_server_does(
    toleration: dict[str, Any], expected: str
) -> None:
    assert rejected(ValueError, scheduling=Scheduling(tolerations=[toleration])) == expected


def test_toleration_seconds_must_be_an_int() -> None:
    toleration = {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": "300"}

    message = rejected(TypeError, scheduling=Scheduling(tolerations=[toleration]))

    assert message == "scheduling.tolerations[0].tolerationSeconds must be int, got str '300'"


def test_tolerations_given_as_a_generator_are_refused_not_lost() -> None:
    # Read once to validate and once to write: a generator came out empty.
    tolerations = ({"key": k, "operator": "Exists"} for k in ("dedicated",))

    message = rejected(TypeError, scheduling=Scheduling(tolerations=tolerations))  # type: ignore[arg-type]

    assert message.startswith("scheduling.tolerations must be tuple or list, got generator")


# -- objects users must not clobber (issue 10) ---------------------------------------------------


def test_name_default_would_overwrite_the_namespace_service_account() -> None:
    message = rejected(ValueError, name="default")

    assert message == (
        "name must not be 'default': the backend's ServiceAccount would overwrite the "
        "namespace's own, got 'default'"
    )


@pytest.mark.parametrize("namespace", ["default", None])
def test_name_kubernetes_would_overwrite_the_api_server_service(namespace: str | None) -> None:
    chart = cdk8s.Chart(cdk8s.App(), "test", namespace=namespace)

    with pytest.raises(ValueError, match="kubernetes") as raised:
        FlaskBackend(chart, "kubernetes", image=IMAGE)

    assert str(raised.value) == (
        "name must not be 'kubernetes' in the default namespace: the backend's Service would "
        "overwrite the API server's, got 'kubernetes'"
    )
    assert list(chart.node.children) == []


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", "kube-x"])
def test_kube_namespaces_are_refused(namespace: str) -> None:
    chart = cdk8s.Chart(cdk8s.App(), "test", namespace=namespace)

    with pytest.raises(ValueError, match="kube-") as raised:
        FlaskBackend(chart, "coredns", image=IMAGE)

    assert str(raised.value) == (
        "namespace (of chart 'test') must not start with 'kube-', which Kubernetes reserves for "
        f"its own components, got {namespace!r}"
    )
    assert list(chart.node.children) == []


def test_two_backends_that_would_emit_the_same_objects_across_charts_are_refused() -> None:
    # Given an App with a chart in namespace "shared" holding a backend "api"
    app = cdk8s.App()
    FlaskBackend(
        cdk8s.Chart(app, "one", namespace="shared"), "api", image=IMAGE, secrets=FAKE_SECRETS
    )
    two = cdk8s.Chart(app, "two", namespace="shared")

    # When a second chart in the same namespace adds a backend with the same name
    with pytest.raises(ValueError, match="already emits") as raised:
        FlaskBackend(two, "api", image=IMAGE, secrets=FAKE_SECRETS)

    # Then it is refused, and leaves nothing behind: a distinct name then works
    assert str(raised.value) == (
        "name 'api' would emit Deployment 'api' in namespace 'shared', which 'one/api' already "
        "emits in this App (kubectl would keep only one): pass a distinct name"
    )
    assert list(two.node.children) == []
    FlaskBackend(two, "api", name="api-two", image=IMAGE, secrets=FAKE_SECRETS)
    documents = [d for d in yaml.safe_load_all(app.synth_yaml()) if d]
    identities = [(d["kind"], d["metadata"]["name"]) for d in documents]
    assert len(identities) == len(set(identities)) == 14


def test_the_same_name_in_another_namespace_or_app_is_fine() -> None:
    app = cdk8s.App()
    FlaskBackend(cdk8s.Chart(app, "one", namespace="one"), "api", image=IMAGE)
    FlaskBackend(cdk8s.Chart(app, "two", namespace="two"), "api", image=IMAGE)
    FlaskBackend(cdk8s.Chart(cdk8s.App(), "one", namespace="one"), "api", image=IMAGE)


def test_a_taken_id_is_a_value_error_not_a_jsii_error() -> None:
    chart = cdk8s.Chart(cdk8s.App(), "test", namespace="backend")
    FlaskBackend(chart, "api", image=IMAGE)

    with pytest.raises(ValueError, match="already used") as raised:
        FlaskBackend(chart, "api", name="other-api", image=IMAGE)

    assert str(raised.value) == (
        "id 'api' is already used by another construct in 'test'; pass a distinct id"
    )
    # and the name it would have used is still free
    FlaskBackend(chart, "other", name="other-api", image=IMAGE)


# -- secret values not recoverable from the rollout checksum (issue 10) --------------------------

CHECKSUM_KEY_RULE = (
    "secrets['SECRET_KEY'] must be at least 32 random characters (it signs sessions and keys the "
    "checksum/config annotation, which Deployment readers see)"
)


def test_secrets_without_a_secret_key_are_refused() -> None:
    # A 4-digit password alone was recovered from the checksum in 0.02 s.
    message = rejected(ValueError, secrets={"DATABASE_PASSWORD": "4821"})

    assert message == f"{CHECKSUM_KEY_RULE}, got keys ['DATABASE_PASSWORD']"


def test_a_short_secret_key_is_refused_without_showing_it() -> None:
    secrets = {"SECRET_KEY": "zq-short", "DATABASE_URL": "postgresql://api:4821@db/api"}

    message = rejected(ValueError, secrets=secrets)

    assert message == f"{CHECKSUM_KEY_RULE}, got 8 characters"


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (
            {"config": {"PORT": "9000"}, "env_prefix": ""},
            "the backend and config both make the environment variable 'PORT'",
        ),
        (
            {"config": {"FEATURES": "a"}, "env": {"FLASK_FEATURES": "b"}},
            "env and config both make the environment variable 'FLASK_FEATURES'",
        ),
        (
            {
                "config": {"SECRET_KEY": "not-secret"},
                "secrets": {"SECRET_KEY": SECRET_VALUE},
                "secrets_as_env": True,
            },
            "config and secrets both make the environment variable 'FLASK_SECRET_KEY'",
        ),
    ],
)
def test_an_environment_variable_must_not_be_set_twice(
    props: dict[str, Any], expected: str
) -> None:
    # env wins over envFrom, and a later envFrom over an earlier: one value would be lost.
    message = rejected(ValueError, **props)

    assert message == f"{expected}: the app would see only one of the values; rename one"


def test_id_must_not_be_empty() -> None:
    assert rejected(ValueError, id="", name="api") == "id must not be empty, got ''"
