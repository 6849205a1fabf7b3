"""SECRET_KEY and other secret values from the environment and a dotenv file, safely.

What main.py does with .env, for any chart: read a dotenv file literally (no `${VAR}`
expansion, bounded, UTF-8 only, line numbers but never values in errors); refuse a .env someone
else could have planted; and keep a generated SECRET_KEY in .env (0600, written aside and linked
or renamed into place, under a lock, so that concurrent first synths agree on one key and a
crash never leaves half a file), so that every later synth gives the same Secret and the pods do
not roll.

`secret_key()` is the one call a chart needs: `secrets={"SECRET_KEY": secret_key()}`.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Mapping

from flask_backend.output import flocked


class SettingError(ValueError):
    """A bad setting: say it in one line (no traceback); main.py exits 2."""


def program_name() -> str:
    """The running script's file name, for one-line messages ("main.py: ...")."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name.endswith(".py") else "flask_backend"


def secret_key(
    env_file: str = ".env",
    *,
    name: str = "SECRET_KEY",
    environ: Mapping[str, str] | None = None,
    program: str | None = None,
) -> str:
    """SECRET_KEY from the environment, else from `env_file`, else a new random one kept there.

    The first synth without one creates `env_file` (mode 0600) holding a new 64-character key
    and says so on stderr; later synths read it, so the Secret and the pods stay as they are.
    An `env_file` someone else could have written is refused (SettingError, one line naming it).
    When `env_file` cannot be written (a read-only folder), the key is for this synth only, with
    a warning on stderr. `name` is the variable read and kept (`secret_key(name=
    "ADMIN_SECRET_KEY")`): one key per backend, as a key two apps share lets a session one of
    them signs be accepted by the other.
    """
    if not isinstance(name, str) or not _VARIABLE.fullmatch(name):
        raise ValueError(
            "name must be an environment variable name (letters, digits, '_'; no leading "
            f"digit), got {name!r}"
        )
    environ = os.environ if environ is None else environ
    program = program or program_name()
    if environ.get(name):
        return environ[name]
    if os.path.lexists(env_file):
        # A chart has no --env-file: what it can do is set the key or move the file.
        check_default_env_file(env_file, remedy=f"set {name} instead, or move it away")
        kept = read_env_file(env_file).get(name)
        if kept:
            return kept
    key, one_off = keep_secret_key(
        env_file,
        secrets.token_urlsafe(48),
        program=program,
        name=name,
        elsewhere="pass existing_secret",
    )
    if one_off:
        print(
            f"{program}: warning: {one_off}; generated a random one for this synth (sessions "
            f"reset and pods roll on every synth). Set {name} to pin it.",
            file=sys.stderr,
        )
    return key


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


ENV_FILE_LIMIT = 1024 * 1024  # a ConfigMap or Secret holds 1 MiB at most: more is a mistake


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines, taken literally: `${VAR}` is not expanded (it would pull the synth
    machine's environment into a Secret)."""
    from dotenv.parser import parse_stream  # the synth extra's: imported when used

    try:
        with open(path, "rb") as stream:
            writable_by_others = os.fstat(stream.fileno()).st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            if writable_by_others:
                # Its lines pick the image that runs with the app's secrets (IMAGE=...).
                mode = stat.S_IMODE(os.fstat(stream.fileno()).st_mode)
                who = "anyone" if writable_by_others & stat.S_IWOTH else "its group"
                raise SettingError(
                    f"refusing to read env-file {path!r}: {who} may write to it (mode "
                    f"{mode:04o}), and its settings choose what runs with the secrets; "
                    f"chmod go-w {path}"
                )
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


def check_default_env_file(path: str, *, remedy: str | None = None) -> None:
    """Refuse to read .env unasked when someone else could have planted it: in a shared
    directory, their SECRET_KEY would sign your sessions. --env-file reads any file you name
    (main.py's remedy, said unless `remedy` says another)."""
    try:
        status = os.stat(path)
    except OSError as error:
        raise SettingError(f"env-file {path!r} cannot be read: {error.strerror}") from None
    owner_ok = status.st_uid in (os.geteuid(), 0)
    if not stat.S_ISREG(status.st_mode) or not owner_ok:
        why = (
            "it is not a regular file"
            if not stat.S_ISREG(status.st_mode)
            else f"it belongs to another user (uid {status.st_uid})"
        )
        raise SettingError(
            f"refusing to read {path!r}: {why}; "
            f"{remedy or f'name it with --env-file {path} if you trust it'}"
        )


def keep_secret_key(
    path: str,
    new_key: str,
    *,
    program: str = "main.py",
    name: str = "SECRET_KEY",
    elsewhere: str = "use --existing-secret NAME",
) -> tuple[str, str | None]:
    """The key `name` kept in path (.env): new_key, added there by the first synth, so that
    later synths give the same Secret and the pods do not roll. Returns (key, None), or
    (new_key, why) when path cannot be written (a read-only directory: warned). A refusal ends
    with `elsewhere`: how the caller takes a Secret managed elsewhere instead.

    First synths running at once agree on one key: they take turns (a lock on the directory)
    and each reads path again first. path is created 0600 whole or not at all (written aside,
    then hard-linked into place), and a path with other lines keeps them: it is replaced by a
    copy with the key added, never through a symlink, never if others may read it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    key = new_key
    try:
        with flocked(folder, fcntl.LOCK_EX):
            if os.path.lexists(path):
                kept = read_env_file(path).get(name)
                if kept:
                    return kept, None
                _add_line(path, f"{name}={key}\n", program, name, elsewhere)
                what = f"added a new {name} to {path}"
            else:
                _create_whole(path, f"{name}={key}\n".encode())
                what = f"created {path} with a new {name} (mode 0600)"
    except OSError as error:
        return key, f"{name} is not set and cannot be kept in {path} ({error.strerror})"
    print(
        f"{program}: {what}; later synths reuse it (rotate it: README, Secrets). Keep {path} "
        "out of version control.",
        file=sys.stderr,
    )
    return key, None


def _create_whole(path: str, data: bytes) -> None:
    """path with data, mode 0600, appearing whole (never half-written) or not at all."""
    _write_aside(path, data, 0o600, os.link)  # link fails if path appeared: never clobbered


def _write_aside(
    path: str, data: bytes, mode: int, put_in_place: Callable[[str, str], None]
) -> None:
    """Write data beside path (fsynced, with mode), then put_in_place(aside, path): os.link
    (never over an existing path) or os.replace (atomic: readers see old or new)."""
    aside = f"{path}.{secrets.token_hex(8)}.tmp"  # .env.* is git-ignored
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(descriptor, mode)
        os.write(descriptor, data)
        os.fsync(descriptor)
        put_in_place(aside, path)
    finally:
        os.close(descriptor)
        with contextlib.suppress(FileNotFoundError):  # os.replace moved it
            os.unlink(aside)


def _add_line(path: str, line: str, program: str, name: str, elsewhere: str) -> None:
    """path with line added, its other lines untouched; refused (SettingError) through a
    symlink, on a file of someone else, and on one others may read."""
    status = os.lstat(path)
    mode = stat.S_IMODE(status.st_mode)
    if stat.S_ISLNK(status.st_mode) or not stat.S_ISREG(status.st_mode):
        problem = "it is a symlink" if stat.S_ISLNK(status.st_mode) else "not a regular file"
    elif status.st_uid != os.geteuid():
        problem = f"it belongs to another user (uid {status.st_uid})"
    elif mode & 0o077:
        problem = f"others may read it (mode {mode:04o}; chmod 600 {path} to let {program} add it)"
    else:
        problem = None
    if problem:
        raise SettingError(
            f"{name} is not set and {program} does not add it to {path}: {problem}. Add "
            f"{name}=<48+ random characters> yourself, or {elsewhere}"
        )
    with open(path, "rb") as stream:
        data = stream.read()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    _write_aside(path, data + line.encode(), mode, os.replace)
