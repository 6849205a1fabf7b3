"""write_app: synthesize a cdk8s App into a directory without ever destroying what it did not
write, crash-safe, one synth at a time, private (the output holds Secrets)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import cdk8s

# What write_app writes into an output directory besides the manifests. The record lists every
# file a synth wrote there, with its SHA-256 (the format of `sha256sum`, so `sha256sum -c` checks
# it): a later synth replaces or deletes those files and nothing else. The staging directory is
# where a synth is written before its files are moved into place, one atomic rename each.
RECORD = ".synth.sha256"
STAGING = ".synth-staging"
# Set only by tests/test_main_output.py: stop (SIGSTOP) at the named step, for the test to kill.
STOP_AT = "FLASK_BACKEND_TEST_STOP_AT"


class OutputError(Exception):
    """The output directory cannot be written as asked (say it in one line: no traceback)."""


def write_app(make_app: Callable[[str], cdk8s.App], outdir: Path) -> tuple[cdk8s.App, list[Path]]:
    """Synthesize the app make_app builds into outdir; return it and the files written.

    make_app(outdir) builds the cdk8s App (`cdk8s.App(outdir=outdir)` and its charts); write_app
    calls it with a staging directory inside outdir, where the App synthesizes.

    Never destroys what it did not write: outdir must be new, empty, or hold only the files an
    earlier synth listed in RECORD, unchanged; anything else is refused (OutputError) before a
    byte is written, and so are `/`, the home directory, the working directory and its parents.

    Crash-safe without renaming outdir (a mount point cannot be renamed over, and a rename
    cannot cross file systems): each file moves from STAGING inside outdir into place by an
    atomic rename, and RECORD lists old and new files while they move. A kill -9 at any moment
    leaves every file old or new, never missing, and a RECORD the next synth accepts (it also
    removes the staging a kill left behind). An app of one chart writes one file, so outdir is
    always the whole old synth or the whole new one; an app of several charts could be caught
    between two files. SIGTERM, SIGHUP and Ctrl-C remove the staging directory.
    Concurrent synths into one outdir take turns (flock on outdir, which is never renamed).
    Files are 0600 and folders 0700 whatever the umask: the output holds a Secret.
    """
    target = check_outdir(outdir)
    # Constructs validate here, before anything is written, and outside the lock: building
    # takes most of a synth's time, so concurrent synths wait only for each other's writes.
    app = make_app(str(target / STAGING))
    _check_built(app, target / STAGING)
    try:
        with _signals_raise(), _locked(target) as created:
            return app, _write_locked(app, target, outdir, created)
    except OSError as error:
        raise OutputError(f"cannot write {str(outdir)!r}: {error.strerror}") from None


def _check_built(app: object, staging: Path) -> None:
    """make_app's answer, checked before anything is written: an App built without the folder
    it was given would synthesize straight into its own (cdk8s's default, `dist`), past the
    staging folder and the record, and the next synth would refuse that unrecorded file."""
    import cdk8s

    if not isinstance(app, cdk8s.App):
        got = "None" if app is None else type(app).__name__
        raise TypeError(f"make_app must return the cdk8s.App it builds, got {got}")
    if os.path.realpath(app.outdir) != str(staging):
        raise ValueError(
            "make_app must build its App with the folder it is given (App(outdir=outdir)), got "
            f"an App writing to {app.outdir!r}"
        )


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
                    f"the synth wrote {entry.name!r}: write_app records plain files only, under "
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


def committed_by_git(files: Sequence[Path]) -> list[Path]:
    """The files among `files` (of one folder) that `git add` would commit: inside a git work
    tree and not ignored (a tracked file never is). None without git or outside a repository."""
    git = shutil.which("git")
    if git is None or not files:
        return []
    folder = files[0].parent

    def git_says(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git from PATH, our own arguments
            [git, "-C", str(folder), *args], capture_output=True, text=True, timeout=30
        ).stdout

    try:
        if git_says("rev-parse", "--is-inside-work-tree").strip() != "true":
            return []
        ignored = set(git_says("check-ignore", "--", *(f.name for f in files)).splitlines())
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [f for f in files if f.name not in ignored]


def check_outdir(outdir: Path) -> Path:
    """outdir with symlinks resolved (a symlinked dist/ stays a symlink), or OutputError: what
    write_app refuses, answered early (it asks again under its lock)."""
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
    # Early answers, before the App is built (write_app asks again under the lock).
    existing = next(folder for folder in (target, *target.parents) if folder.exists())
    if not existing.is_dir():
        raise OutputError(
            f"cannot create output directory {str(outdir)!r}: {str(existing)!r} is not a directory"
        )
    try:
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        if existing == target:
            with flocked(target, fcntl.LOCK_SH):  # not while another synth moves files
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
        with flocked(target, fcntl.LOCK_EX) as descriptor:
            try:
                still_there = os.path.samestat(os.fstat(descriptor), os.stat(target))
            except FileNotFoundError:
                still_there = False
            if still_there:
                yield created
                return


@contextlib.contextmanager
def flocked(folder: Path | str, operation: int) -> Iterator[int]:
    """Hold flock(operation) on folder itself (no lock file to leave behind); yields its fd."""
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
            f"output directory {str(shown)!r} holds files no synth wrote ({listed}"
            f"{', ...' if len(foreign) > 3 else ''}): nothing was changed; move them away or "
            "choose a new or empty directory (CDK8S_OUTDIR)"
        )
    return recorded


def _read_record(path: Path) -> dict[str, set[str]] | None:
    """RECORD's `sha256sum` lines as name: digests (a name is listed twice while it is being
    replaced), or None if it is not a record write_app wrote."""
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
    """Tests only (STOP_AT): stop here, for the test to kill -9 the synth at this step, or to
    send it a signal and SIGCONT."""
    if os.environ.get(STOP_AT) == step:
        os.kill(os.getpid(), signal.SIGSTOP)
        # A signal sent while stopped may wake jsii's stderr thread instead of this one; Python
        # then runs the handler here only at its next check, which without a pause could come
        # after the files moved (seen once under load). The pause lets it land at this step.
        time.sleep(0.5)


def write_app_or_exit(
    make_app: Callable[[str], cdk8s.App], outdir: Path | str | None = None
) -> tuple[cdk8s.App, list[Path]]:
    """write_app for a chart's script: a bad input is one line on stderr and exit status 2.

    `outdir` defaults to $CDK8S_OUTDIR (what `cdk8s synth` sets), else "dist". A ValueError or
    TypeError from the constructs (a bad prop, a missing or refused SECRET_KEY: see
    flask_backend.secret_key) and an OutputError (a refused or unwritable folder) print
    `<script>: error: <message>` and exit 2, without a traceback; nothing is written then. So
    does an error cdk8s itself raises about the chart (two charts of one id), which jsii would
    show as a JavaScript stack trace. A Secret written where git would commit it is warned
    about, as main.py does.
    """
    from flask_backend.envfile import program_name

    target = Path(outdir or os.environ.get("CDK8S_OUTDIR") or "dist")
    try:
        app, files = write_app(make_app, target)
    except (ValueError, TypeError, OutputError, RuntimeError) as error:
        # jsii raises cdk8s's errors as RuntimeError from a jsii.errors.JavaScriptError (the
        # JavaScript stack), matched by module: jsii is cdk8s's dependency, not ours. Any other
        # RuntimeError is a bug, whose traceback helps.
        if isinstance(error, RuntimeError) and type(error.__cause__).__module__ != "jsii.errors":
            raise
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"{program_name()}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    # As main.py warns: a chart's own repository rarely ignores dist/ the way this one does.
    committed = committed_by_git([f for f in files if _SECRET.search(f.read_bytes())])
    if committed:
        print(
            f"{program_name()}: warning: {committed[0]} holds a Secret, and git would commit it: "
            "it is in a git work tree and not ignored. Add its folder to .gitignore, or use "
            "existing_secret.",
            file=sys.stderr,
        )
    return app, files


_SECRET = re.compile(rb"^kind: Secret$", re.MULTILINE)
