"""The container images, checked without a Docker engine: each Dockerfile is parsed
(dockerfile-parse) and held to the rules below, and linted with hadolint."""

import io
import re
import sys
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]

# Each image: its Dockerfile, the port its defaults listen on, and what a Rust build needs.
IMAGES = {
    "gateway": {"path": ROOT / "Dockerfile.gateway", "port": "8080", "addr_env": "CCP_GATEWAY_ADDR", "rust": True},
    "admin": {"path": ROOT / "Dockerfile.admin", "port": "8081", "addr_env": "CCP_ADMIN_ADDR", "rust": True},
    "console": {"path": ROOT / "console" / "Dockerfile", "port": "3000", "addr_env": "PORT", "rust": False},
}

SECRET_NAMES = re.compile(r"(PASSWORD|SECRET|PEPPER|TOKEN|API_KEY|PRIVATE|CREDENTIAL|DATABASE_URL)", re.I)


def parsed(name):
    with open(IMAGES[name]["path"], "rb") as f:
        return DockerfileParser(fileobj=io.BytesIO(f.read()))


def stages(parser):
    """Instructions grouped by stage (a FROM starts one)."""
    out = []
    for ins in parser.structure:
        if ins["instruction"] == "FROM":
            out.append([])
        if out and ins["instruction"] != "COMMENT":
            out[-1].append(ins)
    return out


def final(parser):
    return stages(parser)[-1]


@pytest.mark.parametrize("name", IMAGES)
def test_multi_stage_with_a_pinned_base_for_every_stage(name):
    parser = parsed(name)
    froms = [i["value"].split()[0] for i in parser.structure if i["instruction"] == "FROM"]
    assert len(froms) >= 2, "multi-stage: build tools stay out of the runtime image"
    earlier = {i["value"].split()[-1] for i in parser.structure if i["instruction"] == "FROM" and " AS " in i["value"].upper()}
    for image in froms:
        if image in earlier:
            continue  # a stage of this file
        assert "@sha256:" in image or re.search(r":[^:/]*\d", image), f"{image}: pin a versioned tag"
        assert not image.endswith(":latest"), image


@pytest.mark.parametrize("name", IMAGES)
def test_runs_as_an_unprivileged_user(name):
    users = [i["value"].strip() for i in final(parsed(name)) if i["instruction"] == "USER"]
    assert users, "the runtime stage sets USER"
    assert users[-1] not in ("root", "0", "0:0"), users[-1]


@pytest.mark.parametrize("name", IMAGES)
def test_no_secret_is_baked_in(name):
    parser = parsed(name)
    for ins in parser.structure:
        if ins["instruction"] in ("ENV", "ARG", "LABEL"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", ins["value"]) or [ins["value"].split()[0]]
            for var in names:
                assert not SECRET_NAMES.search(var), f"{ins['instruction']} {var}: secrets come from the task definition"
        if ins["instruction"] in ("COPY", "ADD"):
            assert not re.search(r"\.(pem|key)\b|\.env\b|secrets?/", ins["value"]), ins["value"]


@pytest.mark.parametrize("name", IMAGES)
def test_exposes_the_port_its_defaults_listen_on(name):
    image = IMAGES[name]
    runtime = final(parsed(name))
    exposed = [p for i in runtime if i["instruction"] == "EXPOSE" for p in i["value"].split()]
    assert exposed == [image["port"]]
    env = " ".join(i["value"] for i in runtime if i["instruction"] == "ENV")
    match = re.search(rf"{image['addr_env']}=(\S+)", env)
    assert match, f"{image['addr_env']} set in the runtime stage"
    assert match.group(1).split(":")[-1] == image["port"]
    if ":" in match.group(1):
        assert match.group(1).startswith("0.0.0.0:"), "listen on all interfaces inside the container"


@pytest.mark.parametrize("name", IMAGES)
def test_no_healthcheck_the_load_balancer_checks(name):
    assert not [i for i in parsed(name).structure if i["instruction"] == "HEALTHCHECK"]


def profile_of(text, command):
    """The Cargo profile the Dockerfile's `command` (`cargo build`, `cargo chef cook`) builds
    with: `--profile NAME`, `--release`, or the dev profile."""
    cargo_args = re.search(rf"{command} ([^\n]*)", text).group(1)
    match = re.search(r"--profile[ =](\S+)", cargo_args)
    if match:
        return match.group(1)
    return "release" if "--release" in cargo_args else "debug"


def test_the_gateway_image_is_built_with_whole_program_lto():
    text = "\n".join(i["content"] for i in parsed("gateway").structure)
    profile = profile_of(text, "cargo build")
    profiles = tomllib.loads((ROOT / "Cargo.toml").read_text())["profile"]
    settings = {**profiles.get(profiles[profile].get("inherits", profile), {}), **profiles[profile]}
    assert settings.get("lto") == "fat" and settings.get("codegen-units") == 1, (profile, settings)


def test_the_gateway_image_is_built_with_the_workspace_jemalloc_and_sqlite_settings():
    """jemalloc's and SQLite's options are compiled in from `.cargo/config.toml`: the build
    context must carry that file to the `cargo build` that makes the binary (both build
    scripts rerun when their variable changes, so the dependency layer cooked without it is
    rebuilt there)."""
    env = tomllib.loads((ROOT / ".cargo" / "config.toml").read_text())["env"]
    assert "dirty_decay_ms:" in env["JEMALLOC_SYS_WITH_MALLOC_CONF"]
    assert "-DSQLITE_DEFAULT_MEMSTATUS=0" in env["LIBSQLITE3_FLAGS"].split()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not any(entry.strip("/").startswith(".cargo") for entry in ignored), ignored
    text = "\n".join(i["content"] for i in parsed("gateway").structure)
    build = text.index("cargo build --")
    assert text.rfind("COPY . .", 0, build) > text.index("cargo chef cook"), "the whole tree, .cargo included"


@pytest.mark.parametrize("name", [n for n, i in IMAGES.items() if i["rust"]])
def test_rust_images_cache_dependencies_and_carry_ca_certificates(name):
    parser = parsed(name)
    text = "\n".join(i["content"] for i in parser.structure)
    builder = "\n".join(i["value"] for i in stages(parser)[0])
    assert "cmake" in builder, "cmake in the Rust builder (Pingora's zlib-ng)"
    cook = text.index("cargo chef cook")
    assert cook < text.index("cargo build --"), "dependencies are built in their own layer first"
    # Dependencies, binary and the copied file all come from one profile, or the cache and
    # the image would hold another build than the one the Dockerfile names.
    cook_profile = profile_of(text, "cargo chef cook")
    build_profile = profile_of(text, "cargo build")
    assert cook_profile == build_profile, (cook_profile, build_profile)
    copied = [i["value"] for i in final(parser) if i["instruction"] == "COPY" and "--from=build" in i["value"]]
    assert any(f"/target/{build_profile}/" in c for c in copied), (build_profile, copied)
    runtime = "\n".join(i["value"] for i in final(parser))
    assert "ca-certificates" in runtime
    assert "--no-install-recommends" in runtime and "rm -rf /var/lib/apt/lists" in runtime


def test_console_image_installs_dependencies_from_the_lock_file_first():
    parser = parsed("console")
    text = "\n".join(i["content"] for i in parser.structure)
    assert text.index("COPY package.json package-lock.json") < text.index("npm ci") < text.index("COPY . .")
    runtime = "\n".join(i["content"] for i in final(parser))
    assert ".next/standalone" in runtime and "node_modules" not in runtime.replace(".next/standalone", "")


def test_the_docker_build_context_leaves_out_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in ["target", "data", ".git", ".venv", "console/node_modules", "console/.next"]:
        assert entry in ignored, entry
    assert "node_modules" in (ROOT / "console" / ".dockerignore").read_text().split()


@pytest.mark.parametrize("name", IMAGES)
def test_hadolint_finds_nothing(name):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    config = ROOT / ".hadolint.yaml"
    out = subprocess.run([hadolint, "--config", str(config), str(IMAGES[name]["path"])], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
