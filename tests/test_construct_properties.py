"""Properties of FlaskBackend over generated input.

Valid arguments, however combined, always synthesize to objects the official Kubernetes schema
accepts (strict mode); invalid ones always raise ValueError or TypeError from our validation,
never an error from deep inside jsii or at apply time.

The generators build valid values from Kubernetes' rules (not from our validators' regexes), and
invalid values by breaking one rule on purpose.
"""

from __future__ import annotations

import string
from typing import Any

import cdk8s
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_backend import (
    Autoscaling,
    EgressRule,
    FlaskBackend,
    NetworkPolicyOptions,
    Resources,
    Shutdown,
)
from flask_backend.contract import RESERVED_ENV
from tests.support import by_kind, secret_values, synth, validate_strict

# Synthesis costs ~0.15 s per example: few examples, no per-example deadline.
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=200, deadline=None)  # validation only: fast

LOWER_DIGITS = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"


# -- valid values ------------------------------------------------------------------------------


@st.composite
def dns_label(draw: st.DrawFn, *, max_size: int = 63, letter_first: bool = True) -> str:
    """A DNS label: lowercase alphanumerics and '-', alphanumeric at both ends."""
    first = draw(st.sampled_from(string.ascii_lowercase if letter_first else LOWER_DIGITS))
    middle = draw(st.text(LOWER_DIGITS + "-", max_size=max_size - 2))
    last = draw(st.text(LOWER_DIGITS, min_size=1, max_size=1))
    return first + middle + last if draw(st.booleans()) else first


def c_identifier(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.builds(
        lambda head, tail: head + tail,
        st.sampled_from(string.ascii_letters + "_"),
        st.text(string.ascii_letters + string.digits + "_", max_size=max_size),
    )


@st.composite
def file_key(draw: st.DrawFn) -> str:
    """A Secret key used as a file name: [-._a-zA-Z0-9]+, not '.', not starting with '..'."""
    key = draw(st.text(string.ascii_letters + string.digits + "-._", min_size=1, max_size=40))
    return "x" + key if key == "." or key.startswith("..") else key


# Characters a YAML manifest cannot carry intact: the construct rejects them.
NOT_IN_MANIFESTS = "".join(map(chr, range(0x7F, 0xA0))) + "\u2028\u2029\ufffe\uffff"
# Arbitrary text, as config and secrets hold: any other Unicode, surrogates excepted. Also left
# out: what cdk8s writes as valid YAML that kubectl (go-yaml) reads but PyYAML, our test reader,
# does not: a tab inside a plain scalar, and a bare "=" or "<<" (YAML 1.1 value/merge tags); and
# NUL, which no environment variable can hold (config becomes environment variables).
TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters=NOT_IN_MANIFESTS + "\t\x00"),
    max_size=60,
).filter(lambda text: text not in ("=", "<<"))
# A SECRET_KEY long enough to key the rollout checksum (random in real life).
SECRET_KEY = st.text(string.ascii_letters + string.digits + "-_", min_size=32, max_size=64)


@st.composite
def image(draw: st.DrawFn) -> str:
    """registry/path[:tag][@sha256:digest], with a tag or a digest (or both), never bare latest."""
    components = draw(st.lists(dns_label(max_size=12, letter_first=False), min_size=1, max_size=3))
    registry = draw(st.sampled_from(["", "registry.example.com/", "localhost:5000/", "ghcr.io/"]))
    tag = draw(
        st.none()
        | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True).filter(
            lambda t: t != "latest"
        )
    )
    digest = (
        draw(st.text(HEX, min_size=64, max_size=64)) if tag is None or draw(st.booleans()) else None
    )
    reference = registry + "/".join(components)
    if tag is not None:
        reference += f":{tag}"
    if digest is not None:
        reference += f"@sha256:{digest}"
    return reference


@st.composite
def resources(draw: st.DrawFn) -> Resources:
    cpu_request = draw(st.integers(10, 4000))
    memory_request = draw(st.integers(16, 8192))
    memory_limit = draw(st.integers(memory_request, 16384))
    storage_request = draw(st.integers(1, 20))
    return Resources(
        cpu_request_millicores=cpu_request,
        cpu_limit_millicores=draw(st.integers(cpu_request, 16000)),
        memory_request_mib=memory_request,
        memory_limit_mib=memory_limit,
        ephemeral_storage_request_gib=storage_request,
        ephemeral_storage_limit_gib=draw(st.integers(storage_request, 50)),
        tmp_size_mib=draw(st.integers(1, memory_limit - 1)),
    )


@st.composite
def autoscaling(draw: st.DrawFn) -> Autoscaling:
    low = draw(st.integers(1, 20))
    return Autoscaling(
        min_replicas=low,
        max_replicas=draw(st.integers(low, 50)),
        cpu_utilization_percent=draw(st.integers(1, 1000)),
    )


label_key = st.builds(
    lambda prefix, name: prefix + name,
    st.sampled_from(["", "app.kubernetes.io/", "example.com/"]),
    st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,20}[a-z0-9])?", fullmatch=True),
)
label_value = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,40}[A-Za-z0-9])?)?", fullmatch=True)

egress_rule = st.builds(
    EgressRule,
    namespace=dns_label(letter_first=False),
    ports=st.lists(st.integers(1, 65535), min_size=1, max_size=3).map(tuple),
    pod_labels=st.dictionaries(label_key, label_value, max_size=2),
)
network_policy = st.one_of(
    st.none(),
    st.builds(
        NetworkPolicyOptions,
        ingress_namespaces=st.lists(dns_label(letter_first=False), max_size=3).map(tuple),
        egress=st.none() | st.lists(egress_rule, max_size=3).map(tuple),
    ),
)


@st.composite
def valid_props(draw: st.DrawFn) -> dict[str, Any]:
    secrets_as_env = draw(st.booleans())
    env_prefix = draw(st.sampled_from(["FLASK_", "APP_", ""]))
    # As env vars, keys must make C identifiers (with the prefix); as files, file-safe names.
    secret_key = c_identifier() if secrets_as_env else file_key()
    secret_source = draw(st.sampled_from(["none", "values", "existing"]))
    props: dict[str, Any] = {
        "image": draw(image()),
        "name": draw(dns_label()),
        "replicas": draw(st.integers(0, 20)),
        "port": draw(st.integers(1, 65535)),
        "service_port": draw(st.integers(1, 65535)),
        "env_prefix": env_prefix,
        # Never a variable the backend sets, nor one the secrets set too (refused: one value
        # would be lost).
        "config": draw(
            st.dictionaries(
                c_identifier().filter(
                    lambda k: k != "SECRET_KEY" and (env_prefix + k) not in RESERVED_ENV
                ),
                TEXT,
                max_size=5,
            )
        ),
        "secrets_as_env": secrets_as_env,
        "resources": draw(resources()),
        "shutdown": Shutdown(
            pre_stop_sleep_seconds=draw(st.integers(0, 300)),
            graceful_timeout_seconds=draw(st.integers(1, 3600)),
            margin_seconds=draw(st.integers(1, 300)),
        ),
        "autoscaling": draw(st.none() | autoscaling()),
        "network_policy": draw(network_policy),
    }
    if secret_source == "values":
        values = draw(
            st.dictionaries(secret_key.filter(lambda k: k not in props["config"]), TEXT, max_size=4)
        )
        if values or draw(st.booleans()):
            values["SECRET_KEY"] = draw(SECRET_KEY)
        props["secrets"] = values
    elif secret_source == "existing":
        props["existing_secret"] = draw(dns_label())
    return props


@FEW
@given(props=valid_props())
def test_valid_arguments_always_synthesize_to_valid_objects(props: dict[str, Any]) -> None:
    # Given any valid combination of arguments
    # When synthesized
    documents = synth(lambda chart: FlaskBackend(chart, "backend", **props))

    # Then the official schema accepts every object, the Deployment runs the given image, and
    # config and secret values arrive unchanged
    validate_strict(documents)
    deployment = by_kind(documents, "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == props["image"]
    assert deployment["metadata"]["name"] == props["name"]
    assert by_kind(documents, "ConfigMap").get("data", {}) == props["config"]
    if "secrets" in props:
        assert secret_values(by_kind(documents, "Secret")) == props["secrets"]


@FEW
@given(
    config=st.dictionaries(c_identifier(), TEXT, min_size=1, max_size=5),
    secrets=st.dictionaries(c_identifier(), TEXT, max_size=5),
    key=SECRET_KEY,
)
def test_config_checksum_depends_only_on_the_data(
    config: dict[str, str], secrets: dict[str, str], key: str
) -> None:
    secrets = {**secrets, "SECRET_KEY": key}

    # Given the same data twice, in another key order the second time
    def build(chart: cdk8s.Chart) -> tuple[str, str]:
        first = FlaskBackend(chart, "one", image="api:1", config=config, secrets=secrets)
        second = FlaskBackend(
            chart,
            "two",
            image="api:2",
            config=dict(reversed(config.items())),
            secrets=dict(reversed(secrets.items())),
        )
        return first.config_checksum, second.config_checksum

    # When both are built
    first, second = build(cdk8s.Chart(cdk8s.App(), "test"))

    # Then their checksums agree
    assert first == second


# -- invalid values ----------------------------------------------------------------------------

VALID = {"image": "registry.example.com/team/api:1.4.2"}


def bad_name() -> st.SearchStrategy[Any]:
    too_long = st.text(string.ascii_lowercase, min_size=64, max_size=80)
    # One character no DNS label holds, anywhere in an otherwise fine name.
    broken = st.builds(
        lambda name, bad, at: name[:at] + bad + name[at:],
        dns_label(),
        st.sampled_from(list("ABZ_. /:é!")),
        st.integers(0, 63),
    )
    edges = st.sampled_from(["", "-api", "api-", "1api", "9"])
    return too_long | broken | edges


def bad_int(low: int, high: int | None = None) -> st.SearchStrategy[Any]:
    out_of_range = st.integers(max_value=low - 1)
    if high is not None:
        out_of_range |= st.integers(min_value=high + 1)
    wrong_type = st.booleans() | st.floats() | st.text(max_size=5) | st.none()
    return out_of_range | wrong_type


def bad_key() -> st.SearchStrategy[str]:
    """Keys no ConfigMap holds, or no env var can be made of."""
    return st.one_of(
        st.just(""),
        st.text(min_size=1, max_size=20).filter(
            lambda k: any(c not in string.ascii_letters + string.digits + "_" for c in k)
        ),
        st.builds(lambda d, rest: d + rest, st.sampled_from(string.digits), st.text(max_size=5)),
    )


def bad_image() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just("registry.example.com/team/api"),  # no tag, no digest
        st.just("registry.example.com/team/api:latest"),
        st.text(HEX, max_size=63).map(lambda d: f"api@sha256:{d}"),
        st.text(HEX, min_size=65, max_size=70).map(lambda d: f"api@sha256:{d}"),
        st.text("ABCDEF", min_size=64, max_size=64).map(lambda d: f"api@sha256:{d}"),
        st.builds(lambda s: f"api:{s}", st.text(" /:@é", min_size=1, max_size=3)),
        st.builds(lambda s: f"{s}/api:1", st.text("_ !", min_size=1, max_size=3)),
        st.none() | st.integers(),
    )


# Each entry breaks exactly one argument; everything else stays valid.
INVALID = st.one_of(
    bad_name().map(lambda v: {"name": v}),
    bad_int(0).map(lambda v: {"replicas": v}),
    bad_int(1, 65535).map(lambda v: {"port": v}),
    bad_int(1, 65535).map(lambda v: {"service_port": v}),
    # Without a prefix, a leading digit also makes an invalid environment variable.
    bad_key().map(lambda k: {"config": {k: "value"}, "env_prefix": ""}),
    bad_image().map(lambda v: {"image": v}),
    st.sampled_from(["1.0/beta", "-x", "x-", "a b", "v" * 64]).flatmap(
        lambda v: st.sampled_from([{"version": v}, {"component": v}, {"part_of": v}])
    ),
    st.tuples(st.integers(1, 10_000), st.integers(1, 10_000))
    .filter(lambda rl: rl[0] > rl[1] >= 10)
    .map(
        lambda rl: {
            "resources": Resources(cpu_request_millicores=rl[0], cpu_limit_millicores=rl[1])
        }
    ),
    st.tuples(st.integers(1, 50), st.integers(1, 50))
    .filter(lambda mm: mm[0] > mm[1])
    .map(lambda mm: {"autoscaling": Autoscaling(min_replicas=mm[0], max_replicas=mm[1])}),
    st.integers(max_value=0).map(lambda g: {"shutdown": Shutdown(graceful_timeout_seconds=g)}),
    st.integers(max_value=-1).map(lambda p: {"shutdown": Shutdown(pre_stop_sleep_seconds=p)}),
    st.integers(max_value=0).map(lambda m: {"shutdown": Shutdown(margin_seconds=m)}),
    bad_name()
    .filter(lambda n: not n[:1].isdigit())
    .map(lambda ns: {"network_policy": NetworkPolicyOptions(ingress_namespaces=(ns,))}),
    bad_int(1, 65535).map(
        lambda p: {"network_policy": NetworkPolicyOptions(egress=(EgressRule("db", (p,)),))}
    ),
    st.builds(
        lambda before, bad, after: before + bad + after,
        TEXT,
        st.sampled_from(NOT_IN_MANIFESTS),
        TEXT,
    ).flatmap(
        lambda value: st.sampled_from(
            [{"config": {"K": value}}, {"secrets": {"K": value}}, {"env": {"K": value}}]
        )
    ),
    # NUL in what becomes an environment variable.
    st.builds(lambda before, after: before + "\x00" + after, TEXT, TEXT).flatmap(
        lambda value: st.sampled_from([{"config": {"K": value}}, {"env": {"K": value}}])
    ),
    # Integers beyond the API server's int32.
    st.integers(min_value=2**31).flatmap(
        lambda n: st.sampled_from(
            [
                {"replicas": n},
                {"autoscaling": Autoscaling(max_replicas=n)},
                {"resources": Resources(memory_request_mib=n, memory_limit_mib=n)},
            ]
        )
    ),
)


# Secret values marked, so finding one in a message is never a coincidence.
MARKED_SECRET = TEXT.map(lambda text: f"zq-secret-{text}")


@MANY
@given(
    broken=INVALID,
    secrets=st.dictionaries(c_identifier(), MARKED_SECRET, max_size=3),
    key=SECRET_KEY.map(lambda text: f"zq-secret-{text}"),
)
def test_invalid_arguments_always_raise_value_or_type_error(
    broken: dict[str, Any], secrets: dict[str, str], key: str
) -> None:
    # Given valid arguments with one broken
    props = {**VALID, "secrets": {**secrets, "SECRET_KEY": key}, **broken}
    secrets = props["secrets"]
    chart = cdk8s.Chart(cdk8s.App(), "test")

    # When the backend is built, then our validation rejects it (not jsii, not the API server)
    with pytest.raises((ValueError, TypeError)) as raised:
        FlaskBackend(chart, "api", **props)

    # and the message is one line without any secret value
    message = str(raised.value)
    assert "\n" not in message
    for value in secrets.values():
        assert value not in message
    assert list(chart.node.children) == []
