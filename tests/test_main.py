"""main.py: the backend tier in one command, proven on its real output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cdk8s
import pytest
import yaml

import main
from flask_backend import output, write_app
from tests.pod import bwrap_available
from tests.support import (
    FAKE_SECRETS,
    KUBERNETES,
    ROOT,
    clean_env,
    load_dir,
    secret_values,
    validate_strict,
)

DIGEST_IMAGE = "registry.example.com/team/flask-api@sha256:" + "ab" * 32


@pytest.fixture
def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., tuple[int, str, str]]:
    """Run main.main() in-process with a clean environment; returns (exit code, stdout, stderr)."""

    def run(*argv: str, **env: str) -> tuple[int, str, str]:
        monkeypatch.chdir(tmp_path)
        for name in clean_env().keys() ^ os.environ.keys():
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def synthesized(tmp_path: Path) -> list[dict[str, Any]]:
    files = list(load_dir(tmp_path / "dist"))
    assert [f.name for f, _ in files] == ["backend.k8s.yaml"]
    return files[0][1]


def test_default_synth_puts_the_namespace_first_without_a_namespace_field(run_main, tmp_path):
    code, out, _ = run_main(**FAKE_SECRETS)

    assert code == 0
    documents = synthesized(tmp_path)
    namespace = documents[0]
    assert (namespace["kind"], namespace["metadata"]["name"]) == ("Namespace", "backend")
    assert "namespace" not in namespace["metadata"]
    assert all(d["metadata"]["namespace"] == "backend" for d in documents[1:])
    assert {d["kind"] for d in documents} >= {"Deployment", "Service", "ConfigMap", "Secret"}
    validate_strict(documents)
    assert "wrote dist/backend.k8s.yaml (10 objects)" in out
    assert "  Namespace/backend" in out
    assert "  Deployment/flask-api" in out


def test_namespace_enforces_pod_security_restricted_with_pinned_versions(run_main, tmp_path):
    run_main(**FAKE_SECRETS)

    labels = synthesized(tmp_path)[0]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        # The oldest supported minor: every supported cluster applies the same rules.
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == f"v{KUBERNETES['oldest']}"


def test_default_dist_matches_the_snapshot(run_main, tmp_path, yaml_snapshot):
    run_main(**FAKE_SECRETS)

    assert (tmp_path / "dist" / "backend.k8s.yaml").read_text() == yaml_snapshot


def test_default_image_is_the_local_build_and_is_not_pulled(run_main, tmp_path):
    run_main(**FAKE_SECRETS)

    (deployment,) = (d for d in synthesized(tmp_path) if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == main.DEFAULT_IMAGE == "flask-backend-api:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_registry_image_is_always_pulled(run_main, tmp_path):
    run_main("--image", DIGEST_IMAGE, **FAKE_SECRETS)

    (deployment,) = (d for d in synthesized(tmp_path) if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (DIGEST_IMAGE, "Always")


def test_a_name_the_shell_sets_renames_nothing(run_main, tmp_path):
    # WSL and some shells export NAME (the machine's name): main.py reads BACKEND_NAME.
    code, _, err = run_main(NAME="DESKTOP-1", **FAKE_SECRETS)

    assert code == 0, err
    assert {d["metadata"]["name"] for d in synthesized(tmp_path) if d["kind"] == "Deployment"} == {
        "flask-api"
    }


def test_main_reads_no_variable_that_shells_systems_or_ci_set():
    inherited = {"NAME", "HOSTNAME", "HOST", "USER", "USERNAME", "LOGNAME", "HOME", "PATH"}
    inherited |= {"PWD", "SHELL", "TERM", "LANG", "TZ", "TMPDIR", "DISPLAY", "CI", "NODE_NAME"}

    assert not {setting.env for setting in main.SETTINGS} & inherited


def test_a_named_env_file_others_may_write_is_refused(run_main, tmp_path):
    # Its IMAGE= line would choose what runs with the app's secrets.
    (tmp_path / "tier.env").write_text("IMAGE=registry.example.com/evil:1\n")
    (tmp_path / "tier.env").chmod(0o660)

    code, _, err = run_main("--env-file", "tier.env", **FAKE_SECRETS)

    assert code == 2
    assert err == (
        "main.py: error: refusing to read env-file 'tier.env': its group may write to it (mode "
        "0660), and its settings choose what runs with the secrets; chmod go-w tier.env\n"
    )


@pytest.mark.parametrize("ignored", [False, True])
def test_writing_a_secret_where_git_would_commit_it_is_warned(run_main, tmp_path, ignored):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    if ignored:
        (tmp_path / ".gitignore").write_text("deploy/\n")

    code, _, err = run_main(CDK8S_OUTDIR="deploy/out", **FAKE_SECRETS)

    assert code == 0
    warning = (
        "warning: deploy/out/backend.k8s.yaml holds a Secret, and git would commit it: it is in "
        "a git work tree and not ignored. Add its folder to .gitignore, or use --existing-secret "
        "NAME.\n"
    )
    assert (warning in err) is not ignored


def test_flag_beats_environment_which_beats_env_file(run_main, tmp_path):
    (tmp_path / "tier.env").write_text("REPLICAS=5\nLOG_LEVEL=debug\nBACKEND_NAME=from-file\n")

    run_main("--replicas", "3", ENV_FILE="tier.env", BACKEND_NAME="from-env", **FAKE_SECRETS)

    documents = synthesized(tmp_path)
    (deployment,) = (d for d in documents if d["kind"] == "Deployment")
    (config,) = (d for d in documents if d["kind"] == "ConfigMap")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["name"] == "from-env"
    assert config["data"]["LOG_LEVEL"] == "debug"


def test_env_file_supplies_secret_values(run_main, tmp_path):
    (tmp_path / ".env").write_text("SECRET_KEY=key-from-the-env-file-not-a-real-one\n")

    code, out, err = run_main("--env-file", ".env")

    (secret,) = (d for d in synthesized(tmp_path) if d["kind"] == "Secret")
    assert secret_values(secret) == {"SECRET_KEY": "key-from-the-env-file-not-a-real-one"}
    assert code == 0
    assert "SECRET_KEY is not set" not in err
    assert "key-from-the-env-file-not-a-real-one" not in out + err


def test_existing_secret_emits_no_secret_and_mounts_the_named_one(run_main, tmp_path):
    code, _, err = run_main("--existing-secret", "flask-api-managed")

    documents = synthesized(tmp_path)
    assert code == 0
    assert "SECRET_KEY" not in err
    assert "Secret" not in {d["kind"] for d in documents}
    (deployment,) = (d for d in documents if d["kind"] == "Deployment")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "secrets",
        "secret": {"secretName": "flask-api-managed", "defaultMode": 0o440},
    } in volumes


def test_max_replicas_adds_an_autoscaler(run_main, tmp_path):
    run_main("--max-replicas", "6", **FAKE_SECRETS)

    documents = synthesized(tmp_path)
    (hpa,) = (d for d in documents if d["kind"] == "HorizontalPodAutoscaler")
    (deployment,) = (d for d in documents if d["kind"] == "Deployment")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert "replicas" not in deployment["spec"]
    validate_strict(documents)


def test_cdk8s_outdir_is_honoured(run_main, tmp_path):
    run_main(CDK8S_OUTDIR=str(tmp_path / "elsewhere"), **FAKE_SECRETS)

    assert sorted(f.name for f in (tmp_path / "elsewhere").iterdir()) == [
        output.RECORD,
        "backend.k8s.yaml",
    ]
    assert not (tmp_path / "dist").exists()


def test_output_replaces_what_the_previous_synth_wrote_without_leftovers(run_main, tmp_path):
    def two_charts(outdir: str) -> cdk8s.App:
        app = main.build(main.resolve(main.parse_args([]), FAKE_SECRETS), outdir)
        cdk8s.Chart(app, "stale")  # a file main.py wrote once and writes no more
        return app

    write_app(two_charts, tmp_path / "dist")
    assert (tmp_path / "dist" / "stale.k8s.yaml").exists()

    run_main(**FAKE_SECRETS)

    assert sorted(f.name for f in (tmp_path / "dist").iterdir()) == [
        output.RECORD,
        "backend.k8s.yaml",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--replicas", "-1"], "main.py: error: replicas must be >= 0, got -1"),
        (["--replicas", "two"], "main.py: error: replicas must be a whole number, got 'two'"),
        (["--max-replicas", "-3"], "main.py: error: max-replicas must be >= 0"),
        (["--backend-name", "Flask_API"], "main.py: error: name must be a DNS label"),
        (["--image", "flask api:1"], "main.py: error: image must be an image reference"),
        (["--image", "repo/api"], "main.py: error: image must pin a tag or a digest"),
        (["--image-pull-policy", "Sometimes"], "main.py: error: image_pull_policy must be one of"),
        (["--namespace", "Backend"], "main.py: error: namespace must be a DNS label"),
        (["--env-file", "missing.env"], "main.py: error: env-file 'missing.env' cannot be read"),
        (["--existing-secret", "Bad_Name"], "main.py: error: existing_secret must be a DNS"),
    ],
)
def test_bad_setting_is_one_line_exit_2_and_writes_nothing(run_main, tmp_path, argv, message):
    code, out, err = run_main(*argv, **FAKE_SECRETS)

    assert code == 2
    assert err.startswith(message), err
    assert err.count("\n") == 1, err
    assert out == ""
    assert not (tmp_path / "dist").exists()
    assert list(tmp_path.glob(".dist*")) == []


def test_help_lists_every_setting_with_its_environment_variable():
    result = subprocess.run(
        [sys.executable, "main.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )

    for setting in main.SETTINGS:
        assert f"--{setting.flag} {setting.env}" in result.stdout


def test_bad_setting_in_a_real_process_leaves_dist_unchanged_and_prints_no_traceback(tmp_path):
    main.synthesize(main.resolve(main.parse_args([]), FAKE_SECRETS), tmp_path / "dist")
    previous = (tmp_path / "dist" / "backend.k8s.yaml").read_bytes()

    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--replicas", "-1"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr == "main.py: error: replicas must be >= 0, got -1\n"
    assert (tmp_path / "dist" / "backend.k8s.yaml").read_bytes() == previous


def test_normal_synth_prints_no_node_jsii_or_python_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-W", "default", str(ROOT / "main.py"), "--image", DIGEST_IMAGE],
        cwd=tmp_path,
        env=clean_env(**FAKE_SECRETS),
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Node" not in result.stdout
    assert "jsii" not in result.stdout


def test_cdk8s_yaml_runs_main_py_on_the_project_interpreter_and_lists_the_import():
    config = yaml.safe_load((ROOT / "cdk8s.yaml").read_text())

    assert config == {
        "language": "python",
        "app": 'PATH="$PWD/.venv/bin:$PATH" .venv/bin/python main.py',
        "imports": ["k8s@1.27.0"],
    }


def npm_registry_reachable(npm: str) -> bool:
    try:
        subprocess.run([npm, "ping"], capture_output=True, timeout=15, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def test_cdk8s_cli_synth_is_byte_identical_to_python_main_without_a_secret_key(tmp_path):
    bin_dir = Path(sys.executable).parent
    npx = bin_dir / "npx"
    if not npx.exists() or not npm_registry_reachable(str(bin_dir / "npm")):
        pytest.skip("cdk8s-cli comes from the npm registry, which cannot be reached from here")
    work = tmp_path / "project"
    work.mkdir()
    for name in ("main.py", "tier_settings.py", "cdk8s.yaml"):  # the package, not imports/
        shutil.copy(ROOT / name, work / name)
    (work / ".venv").symlink_to(ROOT / ".venv")
    # No SECRET_KEY: the first synth (the CLI's) keeps one in .env, the second reads it.
    env = clean_env() | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    subprocess.run(
        [str(npx), "--yes", "cdk8s-cli@2", "synth", "--output", "cli-dist"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    subprocess.run([sys.executable, "main.py"], cwd=work, env=env, capture_output=True, check=True)

    assert (work / ".env").read_text().startswith("SECRET_KEY=")
    cli = sorted(p.name for p in (work / "cli-dist").iterdir())
    assert (
        cli
        == sorted(p.name for p in (work / "dist").iterdir())
        == [output.RECORD, "backend.k8s.yaml"]
    )
    for name in cli:
        assert (work / "cli-dist" / name).read_bytes() == (work / "dist" / name).read_bytes()


# --- without SECRET_KEY: kept in .env, so every synth writes the same dist/ ------------------
# The first synth generates one and keeps it in .env; later synths reuse it, so dist/ (Secret,
# checksum, migration Job name) is the same on every synth; .env is never read or written where
# that would be unsafe.

CREATED = (
    "main.py: created .env with a new SECRET_KEY (mode 0600); later synths reuse it (rotate it: "
    "README, Secrets). Keep .env out of version control."
)


def dist(tmp_path: Path) -> bytes:
    return (tmp_path / "dist" / "backend.k8s.yaml").read_bytes()


def synthesized_key(tmp_path: Path) -> str:
    ((_, documents),) = load_dir(tmp_path / "dist")
    (secret,) = (d for d in documents if d["kind"] == "Secret")
    return secret_values(secret)["SECRET_KEY"]


def test_first_synth_keeps_a_new_key_in_dotenv_and_the_next_synth_is_byte_identical(
    run_main, tmp_path
):
    code, out, err = run_main()
    first = dist(tmp_path)
    key = synthesized_key(tmp_path)

    assert code == 0
    assert [line for line in err.splitlines() if "SECRET_KEY" in line] == [CREATED]
    assert (tmp_path / ".env").read_text() == f"SECRET_KEY={key}\n"
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert len(key) >= 48
    assert key not in out + err

    code, _, err = run_main()

    assert code == 0
    assert "SECRET_KEY" not in err
    assert dist(tmp_path) == first  # Secret, checksum/config and the migration Job's name


def test_a_dotenv_with_other_lines_gets_the_key_added_and_keeps_them(run_main, tmp_path):
    lines = "# the tier's settings\nREPLICAS=3\nexport LOG_LEVEL='debug'"  # no final newline
    (tmp_path / ".env").write_text(lines)
    (tmp_path / ".env").chmod(0o600)

    code, _, err = run_main()

    assert code == 0
    assert "main.py: added a new SECRET_KEY to .env; later synths reuse it" in err
    key = synthesized_key(tmp_path)
    assert (tmp_path / ".env").read_text() == f"{lines}\nSECRET_KEY={key}\n"
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert b"replicas: 3" in dist(tmp_path)  # and .env was read as the env file
    assert list(tmp_path.glob(".env.*")) == []  # nothing left aside


def test_an_environment_key_wins_and_dotenv_is_not_touched(run_main, tmp_path):
    code, _, err = run_main(SECRET_KEY="fake-secret-key-from-the-environment-not-real")

    assert code == 0
    assert not (tmp_path / ".env").exists()
    assert synthesized_key(tmp_path) == "fake-secret-key-from-the-environment-not-real"
    assert "SECRET_KEY" not in err


def test_a_named_env_file_without_the_key_is_not_written_and_the_key_is_one_off(run_main, tmp_path):
    (tmp_path / "prod.env").write_text("REPLICAS=3\n")

    code, _, err = run_main("--env-file", "prod.env")

    assert code == 0
    assert (tmp_path / "prod.env").read_text() == "REPLICAS=3\n"
    assert not (tmp_path / ".env").exists()
    assert err.splitlines()[0] == (
        "warning: SECRET_KEY is not set (nor in env-file 'prod.env'); generated a random one for "
        "this synth (sessions reset and pods roll on every synth). Pin it with SECRET_KEY=... in "
        "the environment or the env file, or use --existing-secret NAME."
    )


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        ("symlink", "it is a symlink"),
        ("readable", "others may read it (mode 0644; chmod 600 .env to let main.py add it)"),
    ],
)
def test_no_key_is_written_through_a_symlink_or_into_a_readable_dotenv(
    run_main, tmp_path, make, problem
):
    target = tmp_path / "shared.env"
    target.write_text("REPLICAS=3\n")
    if make == "symlink":
        target.chmod(0o600)
        (tmp_path / ".env").symlink_to(target)
    else:
        target.rename(tmp_path / ".env")
        target = tmp_path / ".env"
        target.chmod(0o644)

    code, out, err = run_main()

    assert (code, out) == (2, "")
    assert err == (
        f"main.py: error: SECRET_KEY is not set and main.py does not add it to .env: {problem}. "
        "Add SECRET_KEY=<48+ random characters> yourself, or use --existing-secret NAME\n"
    )
    assert target.read_text() == "REPLICAS=3\n"
    assert not (tmp_path / "dist").exists()


def test_a_symlinked_dotenv_holding_the_key_is_read(run_main, tmp_path):
    (tmp_path / "shared.env").write_text("SECRET_KEY=fake-secret-key-in-a-shared-file-not-real\n")
    (tmp_path / ".env").symlink_to(tmp_path / "shared.env")

    code, _, _ = run_main()

    assert code == 0
    assert synthesized_key(tmp_path) == "fake-secret-key-in-a-shared-file-not-real"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_dotenv_of_another_user_is_not_read_unless_named(run_main, tmp_path):
    planted = "SECRET_KEY=fake-key-planted-by-another-user-not-real\n"
    (tmp_path / ".env").write_text(planted)
    os.chown(tmp_path / ".env", 65534, 65534)

    code, _, err = run_main()

    assert code == 2
    assert err == (
        "main.py: error: refusing to read '.env': it belongs to another user (uid 65534); "
        "name it with --env-file .env if you trust it\n"
    )
    assert not (tmp_path / "dist").exists()

    code, _, _ = run_main("--env-file", ".env")

    assert code == 0
    assert synthesized_key(tmp_path) == "fake-key-planted-by-another-user-not-real"


def test_a_bad_setting_writes_no_dotenv(run_main, tmp_path):
    # --replicas is checked by the construct (FlaskBackend), after main.py's own checks.
    code, _, _ = run_main("--replicas", "-1")

    assert code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    bool(bwrap_available()), reason=f"{bwrap_available()} (a read-only working directory)"
)
def test_a_read_only_working_directory_gives_a_one_off_key_and_says_why(tmp_path):
    project, out = tmp_path / "project", tmp_path / "out"
    project.mkdir()
    out.mkdir()
    sandbox = ["bwrap", "--dev-bind", "/", "/", "--ro-bind", project, project]

    result = subprocess.run(
        [*sandbox, sys.executable, str(ROOT / "main.py")],
        cwd=project,
        env=clean_env(CDK8S_OUTDIR=str(out / "dist")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "warning: SECRET_KEY is not set and cannot be kept in .env (Read-only file system); "
        "generated a random one for this synth (sessions reset and pods roll on every synth). "
        "Pin it with SECRET_KEY=... in the environment or the env file, or use "
        "--existing-secret NAME."
    )
    assert list(project.iterdir()) == []


def test_a_synth_that_finds_a_key_kept_meanwhile_writes_with_that_key(tmp_path, monkeypatch):
    # Given a synth that resolved its settings with no .env (so with a new key) ...
    monkeypatch.chdir(tmp_path)
    tier = main.resolve(main.parse_args([]), {}, default_env_file=".env")
    # ... when another first synth keeps its key before this one builds and writes
    (tmp_path / ".env").write_text("SECRET_KEY=fake-key-kept-by-the-other-synth-not-a-real-one\n")
    (tmp_path / ".env").chmod(0o600)

    _, _, written = main.synthesize(tier, tmp_path / "dist")

    # Then both synths write the same Secret: the key kept first
    assert synthesized_key(tmp_path) == "fake-key-kept-by-the-other-synth-not-a-real-one"
    assert written.one_off_secret_key is None
