"""The Dockerfile, tested without a container runtime (none runs in this sandbox, and
no registry serves the base image): its instructions are read and checked, and its
own RUN and CMD commands are run here, in a fresh venv standing for the base image's
Python, with its paths moved under a scratch root and its command started as the
image's user. What this does not cover: the base image itself, ``useradd`` and
``groupadd`` (skipped: no users are created on the test machine), the COPY of files
into image layers (the test copies them the same way), and Docker's own HEALTHCHECK
scheduling. The README's "Docker" section says the same.

The image's install is a real non-editable install from a wheel, so this module also
checks that an installed package carries its built-in rules and works from any
directory (``check``, ``rules``, ``rewrite``, ``serve``)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from proxy.settings import Settings
from tests.support.sockets import free_port
from tests.test_cli import wait_for_port

# One worker builds the image for the module (its fixture) under pytest-xdist.
pytestmark = pytest.mark.xdist_group("docker")

ROOT = Path(__file__).resolve().parent.parent
IMAGE_USER = 10001
# The absolute paths the Dockerfile uses, moved under the scratch root when run here.
MOVED = re.compile(r"(?<![\w./-])/(wheels|src|etc/consent-proxy|tmp)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)  # (instruction, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for ins, args in self.steps if ins == instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    stages: list[Stage] = []
    logical = ""
    lines: list[str] = []
    for raw in text.splitlines():
        if not logical and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        logical += raw.rstrip()
        if logical.endswith("\\"):
            logical = logical[:-1] + " "
            continue
        lines.append(logical.strip())
        logical = ""
    for line in lines:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 else None))
        else:
            stages[-1].steps.append((instruction, args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    """A JSON-array instruction argument (CMD, HEALTHCHECK ... CMD)."""
    value = json.loads(args[args.index("[") :])
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for token in shlex.split(args):
            key, _, value = token.partition("=")
            env[key] = value
    return env


STAGES = parse_dockerfile((ROOT / "Dockerfile").read_text())
BUILD, FINAL = STAGES[0], STAGES[-1]
FINAL_ENV = env_of(FINAL)


def test_base_has_the_regex_fix() -> None:
    for stage in STAGES:
        m = re.fullmatch(r"python:(\d+)\.(\d+)(?:\.(\d+))?-slim", stage.base)
        assert m, f"base {stage.base!r}: expected python:X.Y[.Z]-slim"
        version = tuple(int(p) for p in m.groups() if p is not None)
        # 3.11.0-3.11.4 match possessive group repeats wrongly (gh-106052).
        assert version >= (3, 12) or (len(version) == 3 and version >= (3, 11, 5)), stage.base


def test_image_runs_as_a_user_with_the_rules_volume_and_a_health_check() -> None:
    users = FINAL.all("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert FINAL.all("VOLUME") == [f'["{FINAL_ENV["CONSENT_PROXY_RULES"]}"]']
    port = FINAL_ENV["CONSENT_PROXY_LISTEN"].rsplit(":", 1)[1]
    assert FINAL.all("EXPOSE") == [port]
    (health,) = FINAL.all("HEALTHCHECK")
    assert exec_form(health) == ["consent-proxy", "health"]  # reads the listen setting
    assert port not in health, "the health check must follow the configured port"
    assert FINAL.all("STOPSIGNAL") == ["SIGTERM"]
    assert exec_form(FINAL.all("CMD")[-1]) == ["consent-proxy", "serve"]


def test_stop_timeout_documented_above_shutdown_timeout() -> None:
    """docker stop waits 10 s by default; in-flight requests get shutdown_timeout."""
    for doc in ("Dockerfile", "README.md"):
        waits = [int(t) for t in re.findall(r"docker stop -t (\d+)", (ROOT / doc).read_text())]
        assert waits and min(waits) > Settings().shutdown_timeout, doc
    assert "--format docker" in (ROOT / "Dockerfile").read_text()
    assert "--format docker" in (ROOT / "README.md").read_text()


def test_copies_name_existing_files() -> None:
    for stage in STAGES:
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                continue
            *sources, _dest = args.split()
            for src in sources:
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"


def test_constraints_pin_every_dependency_within_its_range() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.split(";")[0].partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in map(Requirement, deps):
        name = dep.name.lower()
        assert name in pins, f"constraints.txt does not pin {name}"
        assert dep.specifier.contains(pins[name]), f"{name}=={pins[name]} not in {dep.specifier}"


# -- the Dockerfile's own commands, run here ----------------------------------------------


@dataclass
class Image:
    root: Path  # stands for the image's /
    python: Path  # the base image's interpreter (a fresh venv)
    env: dict[str, str]  # the image's ENV, moved under root

    def run(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=cwd or self.root / "tmp",
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )


def moved(text: str, root: Path) -> str:
    return MOVED.sub(lambda m: f"{root}/{m.group(1)}", text)


def run_stage(stage: Stage, root: Path, local: Path) -> None:
    """COPY and RUN of one stage, as the image builder would do them, under ``root``
    with the base image's Python in ``local``."""
    env = {
        **os.environ,
        "PATH": f"{local / 'bin'}:{os.environ['PATH']}",
        "LD_LIBRARY_PATH": str(local / "lib"),
    }
    workdir = root
    for instruction, args in stage.steps:
        if instruction == "WORKDIR":
            workdir = Path(moved(args, root))
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY" and not args.startswith("--from="):
            *sources, dest = args.split()
            target = workdir / dest if not dest.startswith("/") else Path(moved(dest, root))
            for src in sources:
                path = ROOT / src
                if path.is_dir():
                    shutil.copytree(
                        path,
                        target,
                        ignore=shutil.ignore_patterns("__pycache__"),
                        dirs_exist_ok=True,
                    )
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, target / path.name if dest.endswith("/") else target)
        elif instruction == "RUN":
            for step in args.split("&&"):
                program = step.split()[0]
                if program in ("useradd", "groupadd", "chown"):
                    continue  # no users are made on the test machine
                result = subprocess.run(
                    ["bash", "-c", moved(step, root)],
                    cwd=workdir,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                assert result.returncode == 0, f"RUN {step!r} failed:\n{result.stderr[-3000:]}"


def base_python(root: Path) -> Path:
    """This machine's Python laid out as the base image has it: ``root/usr/local``,
    readable by every user, with pip and an empty site-packages. The files are hard
    links where possible (the Python here may live where the image's user cannot
    reach it, such as under /root)."""
    prefix = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    local = root / "usr" / "local"
    (local / "bin").mkdir(parents=True)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    link(str(prefix / "bin" / version), str(local / "bin" / version))
    (local / "bin" / "python3").symlink_to(version)
    (local / "lib").mkdir()
    for lib in prefix.joinpath("lib").glob("libpython*.so*"):
        link(str(lib), str(local / "lib" / lib.name))
    shutil.copytree(
        prefix / "lib" / version,
        local / "lib" / version,
        symlinks=True,
        copy_function=link,
        ignore=shutil.ignore_patterns(
            "test", "site-packages", "config-*", "idlelib", "tkinter", "turtledemo"
        ),
    )
    (local / "lib" / version / "site-packages").mkdir()
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    env = {**os.environ, "LD_LIBRARY_PATH": str(local / "lib")}
    subprocess.run(
        [str(local / "bin" / "python3"), "-m", "ensurepip", "--default-pip"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return local


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """Both stages run, the build stage's /wheels handed to the final one as
    ``COPY --from=build`` does. About a minute (a wheel build and an install)."""
    root = Path(tempfile.mkdtemp(prefix="consent-proxy-image-"))
    try:
        local = base_python(root)
        (root / "tmp").mkdir()
        (root / "tmp").chmod(0o1777)
        run_stage(BUILD, root, local)
        assert list((root / "wheels").glob("consent_proxy-*.whl")), "no wheel built"
        run_stage(FINAL, root, local)
        env = {k: moved(v, root) for k, v in FINAL_ENV.items()}
        env = {
            "PATH": f"{local / 'bin'}:/usr/bin:/bin",
            "LD_LIBRARY_PATH": str(local / "lib"),
            "LANG": "C.UTF-8",
            **env,
        }
        yield Image(root, local / "bin" / "python3", env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(900)  # the first to run builds the image: a few minutes
def test_image_leaves_no_build_residue_and_carries_the_builtin_rules(image: Image) -> None:
    assert not (image.root / "wheels").exists()
    site = Path(image.run(str(image.python), "-c", "import proxy; print(proxy.__file__)").stdout)
    package = site.parent
    assert "site-packages" in package.parts, package
    assert not list(package.parent.glob("*.egg-info"))
    shipped = package / "consent" / "builtin"
    for rule in (ROOT / "rules").glob("*.toml"):
        assert (shipped / rule.name).read_text() == rule.read_text(), rule.name
    freeze = image.run(str(image.python), "-m", "pip", "freeze", "--exclude", "consent-proxy")
    pins = {
        line.split(";")[0].strip().lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    installed = {line.lower().replace("_", "-") for line in freeze.stdout.split()}
    assert installed == pins, f"installed beyond the pins: {installed ^ pins}"


@pytest.mark.timeout(900)  # the first to run builds the image: a few minutes
def test_installed_commands_work_from_any_directory(image: Image, tmp_path: Path) -> None:
    empty = image.root / "tmp" / "empty"
    empty.mkdir(exist_ok=True)
    env = {"CONSENT_PROXY_RULES": ""}  # no operator layer: the built-in rules alone
    check = image.run("consent-proxy", "check", "--list", cwd=empty, env=env)
    assert check.returncode == 0, check.stderr
    assert "google-analytics" in check.stdout and "built-in" in check.stdout
    assert "site-packages" in check.stdout  # where the built-in rules were found
    page = b'<p>x</p><script src="https://www.google-analytics.com/analytics.js"></script>'
    out = subprocess.run(
        ["consent-proxy", "rewrite", "-", "--consent", "none"],
        input=page,
        capture_output=True,
        cwd=empty,
        env={**image.env, **env},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    # The loader goes; GA's surrogate takes its place (page code that calls ga() runs on).
    assert out.stdout.startswith(b'<p>x</p><script data-consent-surrogate="ga">')
    assert b"google-analytics.com" not in out.stdout


TRACKER_PAGE = (
    b"<!doctype html><html><head><title>t</title>"
    b'<script async src="https://www.google-analytics.com/analytics.js"></script>'
    b'<script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>'
    b"<script>!function(f){f.fbq=function(){};}(window);fbq('init', '1');</script>"
    b'<script async src="https://static.hotjar.com/c/hotjar-1.js?sv=6"></script>'
    b'</head><body><div class="fb-like" data-href="https://example.com/"></div>'
    b'<img src="https://ad.doubleclick.net/ddm/activity/a" width="1" height="1">'
    b'<img src="https://www.google-analytics.com/collect?v=1&t=pageview" width="1" height="1">'
    b'<iframe src="https://www.youtube.com/embed/x" width="560" height="315"></iframe>'
    b"<p>content</p></body></html>"
)


def as_image_user(image: Image) -> list[str]:
    """The prefix that runs a command as the image's user, or [] when that is not
    possible here: not root, or the base Python is out of that user's reach (a Python
    under /root: the venv would then start Debian's python3 instead, another version)."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", f"--reuid={IMAGE_USER}", f"--regid={IMAGE_USER}", "--clear-groups"]
    probe = "import sys; print(sys.version)"
    mine = image.run(str(image.python), "-c", probe).stdout
    theirs = image.run(*prefix, str(image.python), "-c", probe).stdout
    return prefix if theirs == mine else []


@pytest.mark.timeout(900)  # the first to run builds the image: a few minutes
def test_cmd_serves_as_the_image_user_and_the_health_check_follows_the_port(
    image: Image,
) -> None:
    """CMD as the image's user (where this machine allows: see as_image_user), with an
    operator layer that turns Google Analytics off: a refusing visitor keeps the GA
    snippet and loses every other tracker."""
    site = image.root / "tmp" / "site"
    site.mkdir(exist_ok=True)
    (site / "index.html").write_bytes(TRACKER_PAGE)
    rules = Path(image.env["CONSENT_PROXY_RULES"])
    (rules / "google-analytics.toml").write_text("enabled = false\n")
    origin_port, port = free_port(), free_port()
    origin = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(origin_port), "--bind", "127.0.0.1"],
        cwd=site,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **image.env,
        "CONSENT_PROXY_LISTEN": f"127.0.0.1:{port}",  # not the image's 8080: the check follows
        "CONSENT_PROXY_UPSTREAM": f"http://127.0.0.1:{origin_port}",
    }
    log = image.root / "tmp" / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*as_image_user(image), *exec_form(FINAL.all("CMD")[-1])],
            cwd=image.root / "tmp",
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(origin_port, origin)
        wait_for_port(port, proc, timeout=30)
        (health,) = FINAL.all("HEALTHCHECK")
        probe = subprocess.run(
            [*as_image_user(image), *exec_form(health)], env=env, capture_output=True, text=True
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert "ok" in probe.stdout
        elsewhere = {**env, "CONSENT_PROXY_LISTEN": f"127.0.0.1:{free_port()}"}
        assert subprocess.run(exec_form(health), env=elsewhere, capture_output=True).returncode
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=60) as r:
            body = r.read()
            assert r.headers["X-Consent-Actions"] != "none"
        # The operator turned GA off: its loader, gtag.js and its pixel stay, and the
        # catalogue (its data and table inside the wheel) leaves GA's hosts alone too.
        assert b"google-analytics.com/analytics.js" in body
        assert b"gtag/js?id=G-1" in body and b"google-analytics.com/collect" in body
        # The catalogue still holds what no vendor rule names: Hotjar, a YouTube embed.
        assert b"hotjar" not in body and b"youtube.com/embed" not in body
        assert b'data-consent-placeholder="catalogue"' in body
        # Everything else still goes (the Pixel's snippet for its surrogate, whose
        # comment names fbq()).
        assert b"fbq('init'" not in body and b"fb-like" not in body
        assert b'data-consent-surrogate="fbq"' in body
        assert b"doubleclick" not in body and b"<p>content</p>" in body
        if as_image_user(image):
            uid = Path(f"/proc/{proc.pid}/status").read_text()
            assert re.search(rf"(?m)^Uid:\s+{IMAGE_USER}\b", uid), "not running as the image user"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        for p in (proc, origin):
            if p.poll() is None:
                p.kill()
                p.wait()
        (rules / "google-analytics.toml").unlink()
    assert "Traceback" not in log.read_text()


def test_health_exits_1_when_nothing_answers(tmp_path: Path) -> None:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "health", "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and "health" in result.stdout
    assert time.monotonic() - start < 10
