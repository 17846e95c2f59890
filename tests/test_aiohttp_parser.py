"""Reliability case 23: the compiled HTTP parser of aiohttp >= 3.14.1 parses requests,
and ``check_aiohttp`` (printed by ``serve`` at start) says so when it does not."""

from __future__ import annotations

import os
import subprocess
import sys

from proxy.server import check_aiohttp

_CHECK = "from proxy.server import check_aiohttp; print(check_aiohttp())"


def test_compiled_parser_of_a_fixed_aiohttp_is_in_use() -> None:
    from aiohttp import http_parser

    assert http_parser.HttpRequestParser.__module__ == "aiohttp._http_parser"
    assert check_aiohttp() == []


def test_pure_python_parser_is_reported() -> None:
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "compiled HTTP parser is not in use" in out
