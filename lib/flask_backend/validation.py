"""Checks mirroring what the Kubernetes API server would reject, run before anything is synthesized.

Every check raises ``ValueError`` (or ``TypeError`` for a wrong type) with one line that names the
argument, shows the bad value and says what is allowed. Secret *values* never reach these messages:
callers pass keys and sizes, not values.

Source of the rules: kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/util/validation.
"""

from __future__ import annotations

import re
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
SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

MAX_OBJECT_DATA_BYTES = 1024 * 1024  # etcd's limit on one ConfigMap or Secret

# Characters cdk8s writes unescaped into YAML that then does not load back: DEL, C1 controls and
# U+FFFE/U+FFFF are not YAML-printable (kubectl: "control characters are not allowed"); NEL, LS
# and PS are line breaks to YAML 1.1 readers such as kubectl's, which silently change the value.
# Lone surrogates cannot be encoded at all.
YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff\ud800-\udfff]")


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
    require_type(argument, value, int)
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{argument} must be {allowed}, got {value}")
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


def annotation_map(argument: str, value: object) -> dict[str, str]:
    """Annotation or label keys: an optional DNS-subdomain prefix and a qualified name."""
    result = string_map(argument, value)
    for key in result:
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
    return result


def yaml_text(argument: str, data: Mapping[str, str], *, secret: bool = False) -> None:
    """Values must survive the trip through a YAML manifest; secret ones are never shown."""
    for key, value in data.items():
        found = YAML_UNSAFE.search(value)
        if found is None:
            continue
        where = "" if secret else f", got U+{ord(found.group()):04X} at index {found.start()}"
        raise ValueError(
            f"{argument}[{key!r}] must not hold U+007F-U+009F, U+2028, U+2029, U+FFFE, U+FFFF "
            f"or lone surrogates (YAML manifests cannot carry them intact){where}"
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
    if digest is not None and digest.startswith("sha256:") and not SHA256_DIGEST.fullmatch(digest):
        raise ValueError(
            f"{argument} digest must be 'sha256:' and 64 lowercase hex digits, got {digest!r}"
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
