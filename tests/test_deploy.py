"""deploy/: the Kubernetes manifests validate against the Kubernetes schemas and agree
with the proxy's settings; a ConfigMap-style update (the kubelet's ``..data`` symlink
swap) reaches a running proxy with no failed request; nginx accepts the TLS front's
config and a request goes nginx -> proxy -> origin; two proxy processes with the same
rules agree on the generation and on each other's consent cookies."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import yaml
from aiohttp import web

from proxy.consent.layers import Layers
from proxy.settings import Settings
from tests.support.sockets import free_port
from tests.test_cli import spawn, wait_for_port
from tests.test_docker import FINAL, FINAL_ENV, IMAGE_USER

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # a version clusters still run; the schemas ship offline
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
OPENSSL = shutil.which("openssl")


def manifests() -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(K8S.glob("*.yaml"))}


# -- Kubernetes ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in manifests() if n != "kustomization.yaml"])
def test_manifest_validates_against_the_kubernetes_schema(name: str) -> None:
    kubernetes_validate.validate(manifests()[name], KUBERNETES_VERSION, strict=True)


def test_validation_rejects_a_broken_manifest() -> None:
    broken = manifests()["deployment.yaml"]
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_names_every_manifest() -> None:
    kustomization = manifests()["kustomization.yaml"]
    assert sorted(kustomization["resources"]) == sorted(
        n for n in manifests() if n != "kustomization.yaml"
    )


def test_deployment_agrees_with_the_image_and_the_settings() -> None:
    docs = manifests()
    deployment = docs["deployment.yaml"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    settings = Settings()
    assert deployment["spec"]["replicas"] >= 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == IMAGE_USER == int(FINAL.all("USER")[-1][:5])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == ["consent-proxy", "health"]
    listen_port = int(env["CONSENT_PROXY_LISTEN"].rsplit(":", 1)[1])
    assert container["ports"][0]["containerPort"] == listen_port
    shutdown = float(env.get("CONSENT_PROXY_SHUTDOWN_TIMEOUT", settings.shutdown_timeout))
    pre_stop = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    pause = float(re.search(r"sleep\((\d+(?:\.\d+)?)\)", pre_stop).group(1))  # type: ignore[union-attr]
    assert pod["terminationGracePeriodSeconds"] >= shutdown + pause
    # The ConfigMap is mounted where the proxy reads its operator layer.
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "rules"]
    assert mount["mountPath"] == env["CONSENT_PROXY_RULES"] == FINAL_ENV["CONSENT_PROXY_RULES"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "rules"]
    assert volume["configMap"]["name"] == docs["configmap.yaml"]["metadata"]["name"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for other in ("service.yaml", "pdb.yaml"):
        selector = docs[other]["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), other
    assert docs["hpa.yaml"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert docs["hpa.yaml"]["spec"]["minReplicas"] >= 2


def test_configmap_rules_are_a_valid_operator_layer(tmp_path: Path) -> None:
    files = manifests()["configmap.yaml"]["data"]
    ruleset = Layers(tmp_path).build(files)
    off = {r.id for r in ruleset.rules if not r.enabled}
    assert off == {"linkedin"}


def test_compose_file_agrees_with_the_image() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    proxy = compose["services"]["consent-proxy"]
    rules = proxy["environment"]["CONSENT_PROXY_RULES"]
    assert any(v.split(":")[1] == rules for v in proxy["volumes"])
    assert (ROOT / "deploy" / proxy["volumes"][0].split(":")[0]).is_dir()
    grace = int(proxy["stop_grace_period"].rstrip("s"))
    assert grace > Settings().shutdown_timeout
    assert proxy["build"] == ".." and (ROOT / "deploy" / proxy["build"] / "Dockerfile").is_file()
    port = proxy["environment"]["CONSENT_PROXY_LISTEN"].rsplit(":", 1)[1]
    assert proxy["ports"][0].endswith(f":{port}")


# -- a running proxy ----------------------------------------------------------------------

PAGE = (
    b"<html><head><title>t</title>"
    b'<script src="https://chat.example/widget.js"></script>'
    b'<script src="https://stats.example/count.js"></script>'
    b"</head><body><p>text</p></body></html>"
)


def rule(host: str) -> str:
    return f'name = "{host}"\ncategory = "preferences"\n[[block]]\nselector = "script[src]"\nhosts = ["{host}"]\n'


class AtomicWriter:
    """What the kubelet does to a ConfigMap volume: the files live in a timestamped
    directory, ``..data`` points at it, and each key is a symlink through ``..data``.
    An update writes a new directory, swaps ``..data`` with one rename, then adds and
    removes the key symlinks and deletes the old directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.version = 0

    def write(self, files: dict[str, str]) -> None:
        self.version += 1
        stamp = f"..2026_01_01_00_00_{self.version:02d}.{os.getpid()}"
        new = self.directory / stamp
        new.mkdir()
        for name, text in files.items():
            (new / name).write_text(text)
        data = self.directory / "..data"
        old = data.resolve() if data.is_symlink() else None
        tmp = self.directory / "..data_tmp"
        tmp.symlink_to(stamp)
        os.rename(tmp, data)  # the one atomic step
        for name in files:
            link = self.directory / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        for link in self.directory.glob("*.toml"):
            if link.name not in files:
                link.unlink()
        if old is not None:
            shutil.rmtree(old)


def origin_app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


@pytest.fixture
async def origin_url(aiohttp_server: Any) -> str:
    return str((await aiohttp_server(origin_app())).make_url("/"))


def start_proxy(
    tmp_path: Path, name: str, origin: str, *extra: str
) -> tuple[int, subprocess.Popen[str]]:
    port = free_port()
    args = [sys.executable, "-m", "proxy", "serve", "--listen", f"127.0.0.1:{port}"]
    args += ["--upstream", origin, "--access-log", str(tmp_path / f"{name}.access")]
    args += ["--decision-log", str(tmp_path / f"{name}.decisions"), *extra]
    proc = spawn(args, tmp_path / name)
    wait_for_port(port, proc, timeout=30)
    return port, proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


async def health(session: aiohttp.ClientSession, port: int) -> dict[str, Any]:
    async with session.get(f"http://127.0.0.1:{port}/_consent/health") as r:
        assert r.status == 200
        result: dict[str, Any] = await r.json()
        return result


async def test_configmap_update_reaches_a_running_proxy_with_no_failed_request(
    origin_url: str, tmp_path: Path
) -> None:
    """The operator's layer alone (--no-builtin-rules): what is measured is the swap.
    With the built-in rules too, the first page of any new generation also waits for
    the rewriter to compile its patterns (README, "Rules in production")."""
    rules = tmp_path / "rules"
    rules.mkdir()
    kubelet = AtomicWriter(rules)
    kubelet.write({"chat.toml": rule("chat.example")})
    port, proc = start_proxy(
        tmp_path, "proxy", origin_url, "--rules", str(rules), "--no-builtin-rules"
    )
    before = Layers(rules, builtin=False).build({"chat.toml": rule("chat.example")}).generation
    after = Layers(rules, builtin=False).build({"stats.toml": rule("stats.example")}).generation
    statuses: list[int] = []
    generations: list[tuple[float, str, bytes]] = []
    stopped = asyncio.Event()

    async def client(session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 15
        while not stopped.is_set() and time.monotonic() < deadline:
            async with session.get(f"http://127.0.0.1:{port}/") as r:
                body = await r.read()
                statuses.append(r.status)
                rules_id = re.search(r"rules=(\w+)", r.headers.get("X-Consent", ""))
                generations.append((time.monotonic(), rules_id.group(1) if rules_id else "?", body))

    try:
        async with aiohttp.ClientSession() as session:
            assert (await health(session, port))["rules"]["generation"] == before
            loops = [asyncio.create_task(client(session)) for _ in range(4)]
            await asyncio.sleep(0.5)
            swapped = time.monotonic()
            kubelet.write({"stats.toml": rule("stats.example")})
            while (await health(session, port))["rules"]["generation"] != after:
                assert time.monotonic() - swapped < 2.0, "the new rules did not load in 2 s"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            stopped.set()
            await asyncio.gather(*loops)
        assert statuses and set(statuses) == {200}, "a request failed during the swap"
        first_new = min(t for t, g, _ in generations if g == after)
        assert first_new - swapped < 2.0
        for _, generation, body in generations:
            assert generation in (before, after)  # never a mix or a gap
            if generation == before:
                assert b"chat.example" not in body and b"stats.example" in body
            else:
                assert b"stats.example" not in body and b"chat.example" in body
        assert not list(rules.glob("..2026_01_01_00_00_01.*"))  # the old directory is gone
    finally:
        stop(proc)


async def test_two_processes_agree_on_generation_and_consent(
    origin_url: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "chat.toml").write_text(rule("chat.example"))
    (rules / "twitter.toml").write_text("enabled = false\n")
    ports, procs = [], []
    try:
        for name in ("a", "b"):
            port, proc = start_proxy(tmp_path, name, origin_url, "--rules", str(rules))
            ports.append(port)
            procs.append(proc)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            generations = {(await health(session, p))["rules"]["generation"] for p in ports}
            assert generations == {Layers(rules).load().generation}
            async with session.post(
                f"http://127.0.0.1:{ports[0]}/_consent",
                data={"preferences": "1", "next": "/"},
                headers={"Sec-Fetch-Site": "same-origin"},
                allow_redirects=False,
            ) as r:
                assert r.status == 303
                cookie = r.headers["Set-Cookie"].split(";", 1)[0]
            async with session.get(
                f"http://127.0.0.1:{ports[1]}/", headers={"Cookie": cookie}
            ) as r:
                body = await r.read()
                assert "preferences=1" in r.headers["X-Consent"]
                assert "source=cookie" in r.headers["X-Consent"]
            assert b"chat.example" in body  # B honours the choice made on A
    finally:
        for proc in procs:
            stop(proc)


# -- nginx in front -----------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    assert OPENSSL, "openssl is required (.ci/run installs it)"
    crt, key = tmp_path / "site.crt", tmp_path / "site.key"
    subprocess.run(
        [
            *(OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=www.example.com", "-addext", "subjectAltName=DNS:www.example.com"),
            *("-keyout", str(key), "-out", str(crt)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return crt, key


def nginx_config(
    tmp_path: Path, cert: tuple[Path, Path], https: int, http: int, proxy: int
) -> Path:
    """deploy/nginx/consent-proxy.conf with its ports and certificate paths moved, in
    a whole nginx.conf that keeps every file nginx writes under ``tmp_path``."""
    site = (ROOT / "deploy" / "nginx" / "consent-proxy.conf").read_text()
    site = site.replace("/etc/nginx/tls/www.example.com.crt", str(cert[0]))
    site = site.replace("/etc/nginx/tls/www.example.com.key", str(cert[1]))
    site = re.sub(r"listen 443 ", f"listen 127.0.0.1:{https} ", site)
    site = re.sub(r"listen 80;", f"listen 127.0.0.1:{http};", site)
    site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{proxy};")
    (tmp_path / "site.conf").write_text(site)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / sub).mkdir(exist_ok=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/site.conf;
}}
"""
    )
    return conf


@pytest.fixture
def nginx_front(tmp_path: Path, certificate: tuple[Path, Path], origin_url: str) -> Iterator[int]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is required (.ci/run installs it)")
    proxy_port, proxy = start_proxy(
        tmp_path, "proxy", origin_url, "--trusted-proxies", "127.0.0.1/32"
    )
    https = free_port()
    conf = nginx_config(tmp_path, certificate, https, free_port(), proxy_port)
    tested = subprocess.run(
        [NGINX, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stderr
    assert "test is successful" in tested.stderr
    with open(tmp_path / "nginx.out", "w") as out:
        server = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(tmp_path)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(https, server)
        yield https
    finally:
        server.terminate()
        server.wait(timeout=10)
        stop(proxy)


async def test_nginx_front_to_proxy_to_origin(
    nginx_front: int, certificate: tuple[Path, Path]
) -> None:
    https = nginx_front
    site = f"https://www.example.com:{https}"
    # Connect to loopback, but speak to nginx as a browser at www.example.com would:
    # that name for SNI and the certificate check, and in Host.
    url = f"https://127.0.0.1:{https}"
    tls: dict[str, Any] = {
        "ssl": ssl.create_default_context(cafile=str(certificate[0])),
        "server_hostname": "www.example.com",
        "headers": {"Host": f"www.example.com:{https}"},
    }
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(f"{url}/page", **tls) as r:
            body = await r.read()
            assert r.status == 200 and r.headers["Via"].endswith("consent-proxy")
            assert "source=default" in r.headers["X-Consent"]
        assert b"<p>text</p>" in body and b"cp-banner" in body
        # A browser's consent post: same-origin by the Origin nginx's headers describe.
        async with s.post(
            f"{url}/_consent",
            data={"accept": "all", "next": "/page"},
            allow_redirects=False,
            **{**tls, "headers": {**tls["headers"], "Origin": site}},
        ) as r:
            assert r.status == 303, await r.text()
            cookie = r.headers["Set-Cookie"]
            assert "Secure" in cookie  # X-Forwarded-Proto: https reached the proxy
        async with s.get(f"{url}/_consent/health", **tls) as r:
            assert r.status == 404  # the front never exposes the admin endpoints


def test_readme_alerts_on_metrics_the_proxy_serves() -> None:
    from proxy.observe.metrics import Metrics

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### What to alert on") :]
    named = set(re.findall(r"`(consent_proxy_\w+)", section))
    served = set(re.findall(r"(?m)^# TYPE (consent_proxy_\w+)", Metrics().render("g", False)))
    assert named and named <= served, named - served
