"""Checks mirroring what the Kubernetes API server would reject, run before anything is synthesized.

Every check raises ``ValueError`` (or ``TypeError`` for a wrong type) with one line that names the
argument, shows the bad value and says what is allowed. Secret *values* never reach these messages:
callers pass keys and sizes, not values.

Source of the rules: kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/util/validation.
"""

from __future__ import annotations

import posixpath
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")

# The image reference grammar of the distribution project (docker/distribution reference/regexp.go).
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"(?P<repository>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,  # Go's \w: Python's would accept 'api:é1', which no registry or kubelet does
)
# The digests registries and the kubelet accept (OCI image-spec, go-digest): algorithm and length.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
LOWER_HEX = re.compile(r"[0-9a-f]+")

MAX_OBJECT_DATA_BYTES = 1024 * 1024  # etcd's limit on one ConfigMap or Secret
INT32_MAX = 2**31 - 1  # replicas, ports, counts and seconds are int32 in the Kubernetes API
MAX_ANNOTATIONS_BYTES = 256 * 1024  # keys and values of one object's annotations, together
# Maps written into the pod template (pod annotations, node selector). Real pods carry tens; the
# cap is part of the documented props (it dates from when cdk8s-plus wrote these maps in time
# that grew with the square of their size; the backend now writes them itself).
MAX_POD_MAP_ENTRIES = 256
# What Linux execve accepts (fs/exec.c): one "NAME=value" string of at most MAX_ARG_STRLEN bytes
# (NUL included), and all of argv and envp, with a pointer each, within a quarter of the stack
# limit: 2 MiB under the usual 8 MiB. Beyond either, the container fails with E2BIG at start.
MAX_ARG_STRLEN = 32 * 4096
EXEC_ARGS_BYTES = 2 * 1024 * 1024
# Kept for what the image (PATH, PYTHON*, ...), Kubernetes (KUBERNETES_SERVICE_HOST, HOSTNAME,
# ...) and the command line add to the environment we declare.
EXEC_RESERVE_BYTES = 64 * 1024

# Characters cdk8s writes unescaped into YAML that then does not load back: DEL, C1 controls and
# U+FFFE/U+FFFF are not YAML-printable (kubectl: "control characters are not allowed"); NEL, LS
# and PS are line breaks to YAML 1.1 readers such as kubectl's, which silently change the value.
# Lone surrogates cannot be encoded at all.
YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff\ud800-\udfff]")
YAML_UNSAFE_RULE = (
    "must not hold U+007F-U+009F, U+2028, U+2029, U+FFFE, U+FFFF or lone surrogates "
    "(YAML manifests cannot carry them intact)"
)
# Short free text (paths, toleration fields): no control character at all, tab and newline
# included, on top of the YAML rule.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff\ud800-\udfff]")
# An HTTP probe path: RFC 3986 path and query characters (the kubelet builds a URL from it).
URL_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")


def require_type(
    argument: str, value: object, expected: type | tuple[type, ...], *, secret: bool = False
) -> None:
    """Raise TypeError unless value is an instance of expected (bool is not accepted as int).

    With ``secret``, the message shows the type only: a secret passed by mistake as bytes or a
    plain string must not end up in a traceback.
    """
    shown = "" if secret else f" {value!r}"
    wants_int = expected is int or (isinstance(expected, tuple) and int in expected)
    if isinstance(value, bool) and wants_int and expected is not bool:
        raise TypeError(f"{argument} must be an int, got{shown or ' a bool'}")
    if not isinstance(value, expected):
        names = (
            " or ".join(t.__name__ for t in expected)
            if isinstance(expected, tuple)
            else expected.__name__
        )
        raise TypeError(f"{argument} must be {names}, got {type(value).__name__}{shown}")


def int_in_range(argument: str, value: object, low: int, high: int | None = None) -> int:
    """An int from low to high; without high, up to the API server's int32 maximum."""
    require_type(argument, value, int)
    assert isinstance(value, int)
    if high is not None and not low <= value <= high:
        raise ValueError(f"{argument} must be between {low} and {high}, got {value}")
    if value < low:
        raise ValueError(f"{argument} must be >= {low}, got {value}")
    if value > INT32_MAX:
        # 2**64 replicas would be written out as is, and refused by the API server.
        raise ValueError(
            f"{argument} must be <= {INT32_MAX} (an int32 in the Kubernetes API), got {value}"
        )
    return value


def dns_label(argument: str, value: object, *, max_length: int = 63, rfc1035: bool = False) -> str:
    """A DNS label: lowercase alphanumerics and '-', at most max_length characters."""
    require_type(argument, value, str)
    assert isinstance(value, str)
    pattern, rule = (
        (DNS1035_LABEL, "start with a letter, ")
        if rfc1035
        else (DNS1123_LABEL, "start with a letter or digit, ")
    )
    if not pattern.fullmatch(value) or len(value) > max_length:
        raise ValueError(
            f"{argument} must be a DNS label of at most {max_length} characters "
            f"(lowercase letters, digits and '-', {rule}end with a letter or digit), got {value!r}"
        )
    return value


def dns_subdomain(argument: str, value: object) -> str:
    require_type(argument, value, str)
    assert isinstance(value, str)
    if not DNS1123_SUBDOMAIN.fullmatch(value) or len(value) > 253:
        raise ValueError(
            f"{argument} must be a DNS subdomain of at most 253 characters "
            f"(lowercase letters, digits, '-' and '.'), got {value!r}"
        )
    return value


def label_value(argument: str, value: object) -> str:
    require_type(argument, value, str)
    assert isinstance(value, str)
    if not LABEL_VALUE.fullmatch(value) or len(value) > 63:
        raise ValueError(
            f"{argument} must be a label value of at most 63 characters (letters, digits, '-', "
            f"'_' and '.', starting and ending with a letter or digit), got {value!r}"
        )
    return value


def string_map(argument: str, value: object, *, secret: bool = False) -> dict[str, str]:
    """A mapping of str to str, copied so later changes by the caller cannot leak in.

    With ``secret``, messages show keys but never values.
    """
    require_type(argument, value, Mapping, secret=secret)
    assert isinstance(value, Mapping)
    for key in value:
        require_type(f"{argument} key", key, str)
        require_type(f"{argument}[{key!r}]", value[key], str, secret=secret)
    return dict(value)


def label_key(argument: str, key: str) -> str:
    """A label or annotation key: an optional DNS-subdomain prefix and a qualified name."""
    prefix, _, name = key.rpartition("/")
    if (
        not QUALIFIED_NAME.fullmatch(name)
        or len(name) > 63
        or (prefix and (not DNS1123_SUBDOMAIN.fullmatch(prefix) or len(prefix) > 253))
    ):
        raise ValueError(
            f"{argument} key must be a qualified name with an optional DNS-subdomain prefix "
            f"(e.g. 'example.com/my-key'), got {key!r}"
        )
    return key


def annotation_map(argument: str, value: object) -> dict[str, str]:
    """Annotation or label keys: an optional DNS-subdomain prefix and a qualified name."""
    result = string_map(argument, value)
    for key in result:
        label_key(argument, key)
    return result


TOLERATION_FIELDS = ("key", "operator", "value", "effect", "tolerationSeconds")
TOLERATION_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")


def toleration(argument: str, value: object) -> dict[str, Any]:
    """A pod toleration, checked as the API server checks it, copied into a plain dict."""
    require_type(argument, value, Mapping)
    assert isinstance(value, Mapping)
    unknown = set(value) - set(TOLERATION_FIELDS)
    if unknown:
        raise ValueError(
            f"{argument} has unknown fields {sorted(unknown, key=str)}; allowed: "
            f"{', '.join(TOLERATION_FIELDS)}"
        )
    result = dict(value)
    for name in ("key", "operator", "value", "effect"):
        if name in result:
            plain_text(f"{argument}.{name}", result[name])
    key = result.get("key", "")
    # An empty operator is Kubernetes' default, Equal.
    operator = one_of(f"{argument}.operator", result.get("operator", ""), ("", "Equal", "Exists"))
    if key:
        label_key(f"{argument}.key", key)
    if operator == "Exists" and result.get("value", ""):
        raise ValueError(
            f"{argument}.value must be empty when operator is 'Exists', got {result['value']!r}"
        )
    if operator != "Exists":
        if not key:
            raise ValueError(f"{argument}.key must be set unless operator is 'Exists', got ''")
        label_value(f"{argument}.value", result.get("value", ""))
    effect = one_of(f"{argument}.effect", result.get("effect", ""), TOLERATION_EFFECTS)
    if "tolerationSeconds" in result:
        seconds = result["tolerationSeconds"]
        require_type(f"{argument}.tolerationSeconds", seconds, int)
        if not -(2**63) <= seconds < 2**63:
            raise ValueError(f"{argument}.tolerationSeconds must be an int64, got {seconds}")
        if effect != "NoExecute":
            raise ValueError(
                f"{argument}.tolerationSeconds needs effect 'NoExecute', got effect {effect!r}"
            )
    return result


def yaml_text(argument: str, data: Mapping[str, str], *, secret: bool = False) -> None:
    """Values must survive the trip through a YAML manifest; secret ones are never shown."""
    for key, value in data.items():
        found = YAML_UNSAFE.search(value)
        if found is None:
            continue
        where = "" if secret else f", got U+{ord(found.group()):04X} at index {found.start()}"
        raise ValueError(f"{argument}[{key!r}] {YAML_UNSAFE_RULE}{where}")


def plain_text(argument: str, value: object) -> str:
    """Short free text (a path, a toleration field): no control or YAML-unsafe character."""
    require_type(argument, value, str)
    assert isinstance(value, str)
    found = CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"{argument} must not hold control characters, U+2028, U+2029, U+FFFE, U+FFFF or "
            f"lone surrogates, got U+{ord(found.group()):04X} at index {found.start()}"
        )
    return value


def url_path(argument: str, value: object) -> str:
    """An absolute HTTP path (with an optional query), as the kubelet's probes request it."""
    plain_text(argument, value)
    assert isinstance(value, str)
    if not URL_PATH.fullmatch(value):
        raise ValueError(
            f"{argument} must be an absolute URL path (letters, digits and "
            f"-._~!$&'()*+,;=:@/%?), got {value!r}"
        )
    return value


def mount_path(argument: str, value: object) -> str:
    """An absolute path, normalised ('/data/', '//data' and '/x/../data' are all '/data')."""
    plain_text(argument, value)
    assert isinstance(value, str)
    if not value.startswith("/"):
        raise ValueError(f"{argument} must be an absolute path, got {value!r}")
    # normpath keeps a leading '//' (POSIX leaves it implementation-defined; Linux ignores it).
    return "/" + posixpath.normpath(value).lstrip("/")


def pod_map_entries(argument: str, value: Mapping[str, str]) -> None:
    if len(value) > MAX_POD_MAP_ENTRIES:
        raise ValueError(
            f"{argument} must hold at most {MAX_POD_MAP_ENTRIES} entries, got {len(value)}"
        )


def annotations_size(argument: str, annotations: Mapping[str, str]) -> None:
    """The API server's limit on all of one object's annotations, keys included."""
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        raise ValueError(
            f"{argument} hold {size} bytes with the backend's own, more than the "
            f"{MAX_ANNOTATIONS_BYTES} bytes (256 KiB) Kubernetes accepts on one object"
        )


def environment(sources: Mapping[str, Mapping[str, str]]) -> None:
    """Environment variables the container starts with, by the argument they come from.

    Checked against what execve accepts, so the container cannot fail with E2BIG ("argument list
    too long") at every start, and for names set twice, of which the app would see one value
    only (env wins over envFrom, a later envFrom over an earlier). Messages show names and sizes,
    never values.
    """
    total = 0
    set_by: dict[str, str] = {}
    for argument, variables in sources.items():
        for name, value in variables.items():
            other = set_by.setdefault(name, argument)
            if other != argument:
                raise ValueError(
                    f"{other} and {argument} both make the environment variable {name!r}: the "
                    "app would see only one of the values; rename one"
                )
            if "\x00" in value:
                raise ValueError(
                    f"{argument} makes the environment variable {name!r} hold U+0000, which no "
                    "environment variable can carry (execve would fail with EINVAL)"
                )
            size = len(name.encode()) + len(value.encode()) + 2  # '=' and the closing NUL
            if size > MAX_ARG_STRLEN:
                raise ValueError(
                    f"{argument} makes the environment variable {name!r} of {size} bytes, more "
                    f"than the {MAX_ARG_STRLEN} bytes Linux execve accepts for one (the "
                    "container would fail with E2BIG); mount it as a file instead"
                )
            total += size + 8  # and its pointer in envp
    limit = EXEC_ARGS_BYTES - EXEC_RESERVE_BYTES
    if total > limit:
        raise ValueError(
            f"{', '.join(sources)} make {total} bytes of environment variables, more than the "
            f"{limit} bytes Linux execve leaves them under the usual 8 MiB stack (the container "
            "would fail with E2BIG); mount large values as files instead"
        )


def data_keys(argument: str, data: Mapping[str, str], *, env_prefix: str | None) -> None:
    """ConfigMap/Secret keys: valid, safe as file names, C identifiers when they become env vars.

    Only keys and the total size are shown in messages, never a value.
    """
    for key in data:
        if not CONFIG_KEY.fullmatch(key) or len(key) > 253:
            raise ValueError(
                f"{argument} key must be 1 to 253 letters, digits, '-', '_' and '.', got {key!r}"
            )
        if env_prefix is not None and not C_IDENTIFIER.fullmatch(env_prefix + key):
            raise ValueError(
                f"{argument} key {key!r} becomes the environment variable {env_prefix + key!r}, "
                "which must be a C identifier (letters, digits, '_'; no leading digit): "
                "Kubernetes would silently skip it"
            )
        if key == "." or key.startswith(".."):
            # Kubernetes' own rule: these would escape or clash with the volume's ..data links.
            raise ValueError(f"{argument} key must not be '.' or start with '..', got {key!r}")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
    if size > MAX_OBJECT_DATA_BYTES:
        raise ValueError(
            f"{argument} holds {size} bytes, more than the {MAX_OBJECT_DATA_BYTES} bytes "
            "(1 MiB) Kubernetes stores in one object"
        )


@dataclass(frozen=True)
class ImageReference:
    """A parsed container image reference: repository, optional tag, optional digest."""

    repository: str
    tag: str | None
    digest: str | None


def image_reference(argument: str, value: object, *, allow_latest: bool) -> ImageReference:
    require_type(argument, value, str)
    assert isinstance(value, str)
    match = IMAGE_REFERENCE.fullmatch(value)
    if not match or len(match["repository"]) > 255:
        raise ValueError(
            f"{argument} must be an image reference like 'registry.example.com/team/api:1.4.2' "
            f"or 'repo/api@sha256:<64 hex>', got {value!r}"
        )
    tag, digest = match["tag"], match["digest"]
    if tag is None and digest is None:
        raise ValueError(
            f"{argument} must pin a tag or a digest (e.g. '{value}:1.0.0'), got {value!r}"
        )
    if digest is not None:
        algorithm, _, hex_digits = digest.partition(":")
        length = DIGEST_HEX_LENGTHS.get(algorithm)
        if length is None:
            # The grammar allows any algorithm; registries and the kubelet know only these.
            raise ValueError(f"{argument} digest must use sha256, sha384 or sha512, got {digest!r}")
        if len(hex_digits) != length or not LOWER_HEX.fullmatch(hex_digits):
            raise ValueError(
                f"{argument} digest must be '{algorithm}:' and {length} lowercase hex digits, "
                f"got {digest!r}"
            )
    if tag == "latest" and digest is None and not allow_latest:
        raise ValueError(
            f"{argument} uses the mutable tag 'latest' ({value!r}); pin a version or digest, "
            "or pass allow_latest_tag=True"
        )
    return ImageReference(match["repository"], tag, digest)


def one_of(argument: str, value: object, allowed: tuple[Any, ...]) -> Any:
    if value not in allowed:
        raise ValueError(
            f"{argument} must be one of {', '.join(map(repr, allowed))}, got {value!r}"
        )
    return value


# The objects emitted so far in each App, as (kind, name, namespace) -> the construct path that
# emits it (weak: an App that is gone frees its names). kubectl applies every file of dist/, so
# two objects with one identity are one object in the cluster: the last applied wins.
_EMITTED: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, str | None], Any]] = (
    weakref.WeakKeyDictionary()
)
# Kinds that live outside namespaces: their identity ignores the chart's namespace.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "CustomResourceDefinition",
        "IngressClass",
        "RuntimeClass",
    }
)


def claim_objects(
    app: Any,
    owner: Any,
    objects: list[tuple[str, str, str | None]],
    *,
    argument: str,
    value: str,
) -> list[tuple[str, str, str | None]]:
    """Record that `owner` (a construct) emits these (kind, name, namespace) objects in `app`.

    Raise ValueError, recording nothing, when another owner in the same App already emits one
    of them, in any chart: the caller can fix the argument and retry. Returns what it recorded,
    for release_objects.
    """
    emitted = _EMITTED.setdefault(app, {})
    keys = [
        (kind, name, None if kind in CLUSTER_SCOPED_KINDS else namespace)
        for kind, name, namespace in objects
    ]
    for kind, name, namespace in keys:
        other = emitted.get((kind, name, namespace))
        if other is not None:
            where = (
                " (cluster-scoped)"
                if kind in CLUSTER_SCOPED_KINDS
                else (f" in namespace {namespace!r}" if namespace else " (no namespace)")
            )
            path = other.node.path
            raise ValueError(
                f"{argument} {value!r} would emit {kind} {name!r}{where}, which {path!r} already "
                f"emits in this App (kubectl would keep only one): pass a distinct {argument}"
            )
    emitted.update(dict.fromkeys(keys, owner))
    return keys


def release_objects(app: Any, keys: list[tuple[str, str, str | None]]) -> None:
    """Undo claim_objects, when the construct that claimed them could not be built."""
    emitted = _EMITTED.get(app, {})
    for key in keys:
        emitted.pop(key, None)


# Paths ingress-nginx accepts without its snippet-injection guard complaining (its
# strict-validate-path-type, on by default since v1.12), which the Gateway API also accepts.
ROUTE_PATH = re.compile(r"/[A-Za-z0-9\-._~/]*")
IPV4 = re.compile(r"[0-9]+(\.[0-9]+){3}")


def host_name(argument: str, value: object) -> str:
    """A host name an Ingress or HTTPRoute matches: a DNS subdomain, '*.' allowed first."""
    require_type(argument, value, str)
    assert isinstance(value, str)
    name = value.removeprefix("*.")
    if (
        not DNS1123_SUBDOMAIN.fullmatch(name)
        or len(value) > 253
        or IPV4.fullmatch(name)
        or "*" in name
    ):
        raise ValueError(
            f"{argument} must be a DNS name like 'api.example.com' or '*.example.com' (lowercase "
            f"letters, digits, '-' and '.', not an IP address), got {value!r}"
        )
    return value


def route_path(argument: str, value: object) -> str:
    """An absolute, normalised URL path prefix for an Ingress or an HTTPRoute."""
    require_type(argument, value, str)
    assert isinstance(value, str)
    segments = value.split("/")[1:]
    if (
        not ROUTE_PATH.fullmatch(value)
        or len(value) > 1024
        or "//" in value
        or any(s in (".", "..") for s in segments)
    ):
        raise ValueError(
            f"{argument} must be an absolute path like '/api' (letters, digits and -._~/, no "
            f"'//', '.' or '..' segments, at most 1024 characters), got {value!r}"
        )
    return value


# securityContext fields an init container or sidecar may set, and what Pod Security
# "restricted" allows of each (pod-security-admission policy/check_*.go).
CONTAINER_SECURITY_FIELDS = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "privileged",
    "capabilities",
    "seccompProfile",
)


def restricted_security_context(argument: str, value: object) -> dict[str, Any]:
    """securityContext overrides, refused when Pod Security "restricted" would refuse the pod."""
    require_type(argument, value, Mapping)
    assert isinstance(value, Mapping)
    unknown = sorted(set(value) - set(CONTAINER_SECURITY_FIELDS), key=str)
    if unknown:
        raise ValueError(
            f"{argument} has unknown or forbidden fields {unknown}; allowed: "
            f"{', '.join(CONTAINER_SECURITY_FIELDS)}"
        )
    result = dict(value)
    forbidden = {
        "privileged": True,
        "allowPrivilegeEscalation": True,
        "runAsNonRoot": False,
        "runAsUser": 0,
    }
    for key, bad in forbidden.items():
        if key in result and result[key] == bad and type(result[key]) is type(bad):
            raise ValueError(
                f"{argument}.{key} must not be {bad!r}: the namespace enforces Pod Security "
                f'"restricted", got {result[key]!r}'
            )
    for key in ("privileged", "allowPrivilegeEscalation", "runAsNonRoot", "readOnlyRootFilesystem"):
        if key in result:
            require_type(f"{argument}.{key}", result[key], bool)
    for key in ("runAsUser", "runAsGroup"):
        if key in result:
            int_in_range(f"{argument}.{key}", result[key], 0 if key == "runAsGroup" else 1)
    if "capabilities" in result:
        capabilities = result["capabilities"]
        require_type(f"{argument}.capabilities", capabilities, Mapping)
        added = list(capabilities.get("add", []))
        if set(capabilities) - {"add", "drop"} or any(c != "NET_BIND_SERVICE" for c in added):
            raise ValueError(
                f"{argument}.capabilities may only add NET_BIND_SERVICE (Pod Security "
                f'"restricted"; ALL is always dropped), got {dict(capabilities)!r}'
            )
        result["capabilities"] = {"drop": ["ALL"], **({"add": added} if added else {})}
    if "seccompProfile" in result:
        profile = result["seccompProfile"]
        require_type(f"{argument}.seccompProfile", profile, Mapping)
        if profile.get("type") not in ("RuntimeDefault", "Localhost"):
            raise ValueError(
                f"{argument}.seccompProfile.type must be 'RuntimeDefault' or 'Localhost' (Pod "
                f'Security "restricted"), got {profile.get("type")!r}'
            )
        result["seccompProfile"] = dict(profile)
    return result
