"""``consent-proxy health``: ask a running proxy whether it serves, for container
health checks (Docker's HEALTHCHECK, Kubernetes exec probes).

It reads the same settings as ``serve`` (flags, ``CONSENT_PROXY_*``, ``--config``),
so the port it asks follows ``listen`` wherever that is set. The health endpoint
answers loopback callers, so a wildcard listen address is asked on loopback; with
an ``admin_token`` the request carries it. Standard library only: it starts fast.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from proxy.settings import Settings

EXIT_UNHEALTHY = 1
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def health_url(settings: Settings) -> str:
    host, port = settings.host_port
    host = _LOOPBACK.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/_consent/health"


def health(settings: Settings, timeout: float = 3.0) -> int:
    """Exit 0 when the proxy answers 200 with status ok or degraded (serving the last
    good rules after a refused reload: alive, and the reason is in the answer), 1
    otherwise. One line on stdout says what was found."""
    url = health_url(settings)
    request = urllib.request.Request(url)
    if settings.admin_token:
        request.add_header("Authorization", f"Bearer {settings.admin_token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = json.loads(answer.read(65536))
    except urllib.error.HTTPError as exc:
        print(f"consent-proxy: health: {url}: HTTP {exc.code}")
        return EXIT_UNHEALTHY
    except (OSError, ValueError) as exc:
        print(f"consent-proxy: health: {url}: {getattr(exc, 'reason', exc)}")
        return EXIT_UNHEALTHY
    status = body.get("status") if isinstance(body, dict) else None
    rules = body.get("rules", {}) if isinstance(body, dict) else {}
    error = rules.get("reload_error") if isinstance(rules, dict) else None
    generation = rules.get("generation") if isinstance(rules, dict) else None
    print(
        f"consent-proxy: health: {url}: {status}, rules {generation}"
        + (f" (last reload refused: {error})" if error else "")
    )
    return 0 if status in ("ok", "degraded") else EXIT_UNHEALTHY
