"""The command line as a user runs it: real processes, real curl."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.sockets import free_port

ROOT = Path(__file__).resolve().parent.parent
CURL = shutil.which("curl")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (
            ["serve", "--upstream", "ftp://x"],
            {},
            "upstream = 'ftp://x' is not valid; expected an http:// or https:// URL",
        ),
        (
            ["serve", "--listen", "nowhere"],
            {},
            "listen = 'nowhere' is not valid; expected HOST:PORT",
        ),
        (
            ["serve"],
            {"CONSENT_PROXY_MAX_BODY": "-5"},
            "environment CONSENT_PROXY_MAX_BODY: max_body = '-5'",
        ),
        (
            ["serve"],
            {"CONSENT_PROXY_WORKERS": "many"},
            "workers = 'many' is not valid; expected a positive integer",
        ),
        (["serve", "--trusted-proxies", "10.0.0.0/33"], {}, "trusted_proxies"),
    ],
)
def test_bad_settings_exit_2_naming_key_value_expected(
    args: list[str], env: dict[str, str], needle: str
) -> None:
    result = run_cli(*args, env=env)
    assert result.returncode == 2
    assert needle in result.stderr


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "proxy.toml"
    bad.write_text('upstream = "http://127.0.0.1:9"\nmax_bdy = 3\n')
    result = run_cli("serve", "--config", str(bad))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "unknown setting 'max_bdy'" in result.stderr
    bad.write_text("upstream = [")
    result = run_cli("serve", "--config", str(bad))
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_settings_precedence(tmp_path: Path) -> None:
    from proxy.settings import load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text('upstream = "http://file.example"\nmax_body = 10\nworkers = 3\n')
    s = load_settings(
        {"max_body": "30"},
        env={"CONSENT_PROXY_MAX_BODY": "20", "CONSENT_PROXY_WORKERS": "2"},
        config=str(cfg),
    )
    assert (s.upstream, s.max_body, s.workers) == ("http://file.example/", 30, 2)


def spawn(args: list[str], logs: Path) -> subprocess.Popen[str]:
    """Start a program with its output in files (``logs``.out/.err), not pipes."""
    with open(f"{logs}.out", "w") as out, open(f"{logs}.err", "w") as err:
        return subprocess.Popen(args, stdout=out, stderr=err, text=True, cwd=ROOT)


def wait_for_port(port: int, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Until the program listens: once its rules are compiled (seconds on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = free_port()
    # The console script, as the README tells a new user to run it.
    script = Path(sys.executable).parent / "consent-proxy"
    proc = spawn([str(script), "demo", "--listen", f"127.0.0.1:{port}"], tmp_path / "demo")
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}", proc, tmp_path / "demo.out"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    assert CURL, "curl is required (apt-get install curl)"
    return subprocess.run(
        [CURL, "-s", "--max-time", "10", *args], capture_output=True, text=True, timeout=20
    )


def test_demo_with_curl_as_a_new_user(demo: tuple[str, subprocess.Popen[str], Path]) -> None:
    url, proc, output = demo
    page = curl("-i", url + "/")
    assert page.returncode == 0
    assert page.stdout.startswith("HTTP/1.1 200")
    assert "Larkspur Bicycle Works" in page.stdout
    assert re.search(r"(?im)^via: 1.1 consent-proxy", page.stdout)
    for path in ("/bikes.html", "/workshop.html", "/privacy.html", "/static/site.css"):
        assert curl("-o", "/dev/null", "-w", "%{http_code}", url + path).stdout == "200"
    gz = curl("--compressed", "-D", "-", url + "/")
    assert re.search(r"(?im)^content-encoding: (br|gzip)", gz.stdout) and "</html>" in gz.stdout
    health = curl(url + "/_consent/health")
    assert '"status": "ok"' in health.stdout
    assert (
        curl(
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "X-Forwarded-For: 1.2.3.4",
            url + "/_consent/health",
        ).stdout
        == "404"
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    out = output.read_text()
    assert "curl" in out and url in out
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert any('"path":"/bikes.html"' in line and '"client":"127.0.0.0"' in line for line in lines)


def test_demo_behind_an_existing_banner_with_consent_mode(tmp_path: Path) -> None:
    """The demo's switches: Consent Mode advanced, and the OneTrust-style page's cookie
    read first."""
    port = free_port()
    script = Path(sys.executable).parent / "consent-proxy"
    args = ["--consent-mode", "advanced", "--consent-sources", "onetrust,own"]
    proc = spawn([str(script), "demo", "--listen", f"127.0.0.1:{port}", *args], tmp_path / "d")
    try:
        wait_for_port(port, proc)
        url = f"http://127.0.0.1:{port}/existing-banner.html"
        undecided = curl("--max-time", "60", "-i", url)
        assert "source=default" in undecided.stdout
        assert "googletagmanager.com/gtag/js" in undecided.stdout  # advanced: kept
        assert '"analytics_storage":"denied"' in undecided.stdout
        assert 'id="ot-banner"' in undecided.stdout and 'id="cp-banner"' in undecided.stdout
        cookie = "OptanonConsent=groups=C0001%3A1%2CC0002%3A1"
        chosen = curl("--max-time", "60", "-i", "-b", cookie, url)
        assert "source=onetrust" in chosen.stdout and 'id="cp-banner"' not in chosen.stdout
        assert '"analytics_storage":"granted"' in chosen.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    out = (tmp_path / "d.out").read_text()
    assert "consent sources onetrust,own; Consent Mode advanced" in out
    assert "/existing-banner.html" in out


def serve(logs: Path, *extra: str) -> tuple[int, subprocess.Popen[str]]:
    port = free_port()
    proc = spawn(
        [sys.executable, "-m", "proxy", "serve", "--listen", f"127.0.0.1:{port}", *extra], logs
    )
    wait_for_port(port, proc)
    return port, proc


def test_sigterm_finishes_in_flight_requests_and_exits_0(tmp_path: Path) -> None:
    origin_port = free_port()
    origin = spawn(
        [
            sys.executable,
            "-c",
            f"""
import asyncio
from aiohttp import web
async def slow(request):
    await asyncio.sleep(1.5)
    return web.Response(text="finished")
app = web.Application(); app.router.add_get("/slow", slow)
web.run_app(app, host="127.0.0.1", port={origin_port}, print=None)
""",
        ],
        tmp_path / "origin",
    )
    try:
        port, proc = serve(
            tmp_path / "proxy",
            "--upstream",
            f"http://127.0.0.1:{origin_port}",
            "--access-log",
            str(tmp_path / "a.log"),
            "--log-flush",
            "30",  # lines wait in memory: the stop must write them
        )
        wait_for_port(origin_port, origin)
        slow = spawn([CURL or "curl", "-s", f"http://127.0.0.1:{port}/slow"], tmp_path / "curl")
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert slow.wait(timeout=15) == 0
        assert (tmp_path / "curl.out").read_text() == "finished"
        assert proc.wait(timeout=15) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        assert '"path":"/slow","status":200' in (tmp_path / "a.log").read_text()
    finally:
        origin.terminate()
        origin.wait()


SLOW_ORIGIN = """
import asyncio, sys
from aiohttp import web
async def slow(request):
    await asyncio.sleep(float(request.query.get("s", "3")))
    return web.Response(text="finished")
async def fast(request):
    return web.Response(text="fast")
app = web.Application()
app.router.add_get("/slow", slow)
app.router.add_get("/fast", fast)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, or what came before the peer closed."""
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            if length and len(body) >= int(length.group(1)):
                return data
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def try_new_connection(port: int) -> tuple[str, float]:
    """What a new visitor gets: "refused", "reset", "closed" (no answer), or the
    status line; and how long it took (a hang shows as TimeoutError)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.settimeout(3)
            sock.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_response(sock)
            outcome = answer.split(b"\r\n", 1)[0].decode() if answer else "closed"
    except ConnectionRefusedError:
        outcome = "refused"
    except ConnectionResetError:
        outcome = "reset"
    return outcome, time.monotonic() - started


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_refuses_new_connections_while_in_flight_requests_finish(
    tmp_path: Path, workers: str
) -> None:
    """RELIABILITY (SIGTERM): the proxy stops listening at once, so a new visitor is
    refused promptly instead of waiting for a process that will not answer; an idle
    keep-alive connection is closed; the request in flight finishes with its 200,
    which says ``Connection: close``; exit 0. With one worker or two."""
    import threading

    origin_port = free_port()
    origin = spawn([sys.executable, "-c", SLOW_ORIGIN, str(origin_port)], tmp_path / "origin")
    try:
        wait_for_port(origin_port, origin)
        port, proc = serve(
            tmp_path / "proxy",
            "--upstream",
            f"http://127.0.0.1:{origin_port}",
            "--access-log",
            str(tmp_path / "a.log"),
            "--workers",
            workers,
        )
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        idle.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(idle).startswith(b"HTTP/1.1 200")
        in_flight: list[bytes] = []

        def slow() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
                sock.sendall(b"GET /slow?s=4 HTTP/1.1\r\nHost: x\r\n\r\n")
                in_flight.append(read_response(sock))

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(1)  # the slow request has reached the origin
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        outcomes: list[str] = []
        refused_in_a_row = 0
        while refused_in_a_row < 10:  # every worker has stopped listening
            assert time.monotonic() - signalled < 2.5, f"still accepting: {outcomes}"
            outcome, took = try_new_connection(port)
            outcomes.append(outcome)
            assert took < 1, f"a new connection waited {took:.1f} s for {outcome}"
            refused_in_a_row = refused_in_a_row + 1 if outcome == "refused" else 0
            time.sleep(0.02)
        idle.settimeout(1)
        assert idle.recv(100) == b""  # closed, not left waiting
        idle.close()
        assert proc.poll() is None, "the request in flight should still be running"
        thread.join(timeout=15)
        assert proc.wait(timeout=15) == 0
        head, _, body = in_flight[0].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and body == b"finished"
        assert re.search(rb"(?im)^connection: close", head), head
        assert '"path":"/slow","status":200' in (tmp_path / "a.log").read_text()
    finally:
        origin.terminate()
        origin.wait()


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


UNREADABLE = [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, b"aaaa"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n", 431, b"bbbb"),
    (
        b"GET / HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(200))
        + b"\r\n",
        431,
        b"X-H1",
    ),
    (b"G<T /secret-path HTTP/1.1\r\nHost: x\r\n\r\n", 400, b"secret-path"),
]


def test_unreadable_requests_get_generic_answers_and_one_log_line(tmp_path: Path) -> None:
    """RELIABILITY: 414/431 for oversized request lines and headers, 400 for the rest;
    the page echoes nothing of the request, the log has no traceback, and the access
    log still counts them."""
    access = tmp_path / "access.log"
    port, proc = serve(
        tmp_path / "proxy", "--upstream", "http://127.0.0.1:9", "--access-log", str(access)
    )
    try:
        for request, status, echo in UNREADABLE:
            answer = raw_exchange(port, request)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split(b"\r\n")[0].split(b" ")[1] == str(status).encode(), answer[:200]
            assert echo not in answer and body.startswith(b"<!doctype html>")
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    errors = (tmp_path / "proxy.err").read_text()
    assert "Traceback" not in errors
    assert errors.count("unreadable request from 127.0.0.0") == len(UNREADABLE)
    statuses = re.findall(r'"status":(\d+)', access.read_text())
    assert statuses == [str(status) for _, status, _ in UNREADABLE]


def test_workers_share_one_port(tmp_path: Path) -> None:
    port, proc = serve(tmp_path / "proxy", "--upstream", "http://127.0.0.1:9", "--workers", "2")
    try:
        for _ in range(40):
            r = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/")
            assert r.stdout == "502"
        time.sleep(0.2)
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        pids = {int(p) for p in out.split()}
        assert len(pids) >= 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_python_m_proxy_is_the_same_program() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "serve" in result.stdout and "demo" in result.stdout


async def test_sigterm_closes_websockets_with_1001(aiohttp_server: Any, tmp_path: Path) -> None:
    import asyncio

    import aiohttp

    from tests.support.origin import origin_app

    origin = await aiohttp_server(origin_app())
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--upstream",
        str(origin.make_url("/")),
        "--access-log",
        str(tmp_path / "a.log"),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as s, s.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
            await ws.send_str("hi")
            assert await ws.receive_str() == "echo:hi"
            proc.send_signal(signal.SIGTERM)
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.CLOSE
            assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_every_asset_is_packaged() -> None:
    """Every file of the package that is not Python is named by a package-data glob
    of its package (the wheel has no other way to carry it)."""
    import fnmatch
    import tomllib

    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs: dict[str, list[str]] = table["package-data"]
    files = [
        p
        for p in (ROOT / "proxy").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert len(files) > 10  # templates, styles, the demo site

    def packaged(path: Path) -> bool:
        for package, patterns in globs.items():
            base = ROOT.joinpath(*package.split("."))
            if base in path.parents:
                rel = path.relative_to(base).as_posix()
                if any(
                    fnmatch.fnmatchcase(rel, g) and rel.count("/") == g.count("/") for g in patterns
                ):
                    return True
        return False

    missing = [p.relative_to(ROOT).as_posix() for p in files if not packaged(p)]
    assert missing == [], "not in the wheel: " + ", ".join(missing)


COMMANDS = ("serve", "demo", "check", "rules", "rewrite", "health")


def test_help_is_for_operators() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: consent-proxy")
    for command in COMMANDS:
        assert re.search(rf"(?m)^    {command}\s+\w", result.stdout), command
    assert "CONSENT_PROXY_" in result.stdout and "COMMAND --help" in result.stdout
    assert "the command line" not in result.stdout  # not the module's docstring


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_lists_its_flags_with_an_example(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert re.search(rf"(?m)^example:\n  consent-proxy {command}\b", result.stdout), result.stdout
    assert "--config FILE" in result.stdout
    if command in ("serve", "demo", "check", "rules", "rewrite"):
        assert "--rules DIR" in result.stdout and "--disabled-rules IDS" in result.stdout
        assert "--builtin-rules, --no-builtin-rules" in result.stdout
    if command == "serve":
        for flag in ("--listen HOST:PORT", "--upstream URL", "--max-body BYTES"):
            assert flag in result.stdout
        assert "default: 127.0.0.1:8080" in " ".join(result.stdout.split())


def test_boolean_settings_take_x_and_no_x(tmp_path: Path) -> None:
    from proxy.cli import _parser
    from proxy.settings import FIELDS, Settings, load_settings

    booleans = [f.name for f in FIELDS if isinstance(getattr(Settings(), f.name), bool)]
    assert {"preserve_host", "debug_headers", "builtin_rules"} <= set(booleans)
    for name in booleans:
        flag = name.replace("_", "-")
        for given, value in ((f"--{flag}", True), (f"--no-{flag}", False)):
            args = vars(_parser().parse_args(["serve", given]))
            assert load_settings({name: args[name]}, env={}).__getattribute__(name) is value
    bad = run_cli("serve", "--debug-headers", "false")  # a boolean flag takes no value
    assert bad.returncode == 2 and "unrecognized arguments: false" in bad.stderr


def test_runtime_dependencies_are_what_the_package_imports() -> None:
    """Every [project] dependency is imported by the package at run time, and every
    third-party module the package imports is declared (test and bench libraries are
    in their extras)."""
    import ast
    import tomllib

    from packaging.requirements import Requirement

    declared = {
        Requirement(d).name.lower()
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    imported: set[str] = set()
    for path in (ROOT / "proxy").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = {m.lower() for m in imported - set(sys.stdlib_module_names) - {"proxy"}}
    assert third_party == declared, (third_party - declared, declared - third_party)
