# consent-proxy in a container: the package with its built-in rules inside, your own
# rules (a layer over them) in the /etc/consent-proxy/rules volume.
#
#   docker build -t consent-proxy .
#   docker run -d --name consent-proxy -p 8080:8080 \
#       -e CONSENT_PROXY_UPSTREAM=http://web:8000 \
#       -v "$PWD/my-rules:/etc/consent-proxy/rules:ro" consent-proxy
#   docker stop -t 20 consent-proxy
#
# Stop with -t 20 (compose: stop_grace_period: 20s): requests in flight get
# shutdown_timeout (15 s) to finish, and docker's default wait before SIGKILL is 10 s.
# Set the port with CONSENT_PROXY_LISTEN (or the --config file), not a flag: the
# health check reads the same settings. Podman: podman build --format docker (its
# default OCI format drops HEALTHCHECK). README, "Docker", says which parts CI tests.

# Python 3.12: the tokenizer's patterns need CPython's regex fix of 3.11.5 (gh-106052).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md NOTICE ./
COPY proxy ./proxy
COPY rules ./rules
# A wheel, built here so build/ and *.egg-info stay in this stage.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
COPY --from=build /wheels /wheels
COPY constraints.txt /wheels/
# The pinned dependency set (constraints.txt), the package, an empty rules volume, and
# the user the proxy runs as (uid 10001, as deploy/kubernetes/deployment.yaml says).
RUN pip install --no-cache-dir --constraint /wheels/constraints.txt /wheels/*.whl \
 && rm -rf /wheels \
 && mkdir -p /etc/consent-proxy/rules \
 && groupadd --system --gid 10001 consent \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent consent

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONSENT_PROXY_LISTEN=0.0.0.0:8080 \
    CONSENT_PROXY_RULES=/etc/consent-proxy/rules

USER 10001:10001
WORKDIR /tmp
VOLUME ["/etc/consent-proxy/rules"]
EXPOSE 8080

# `consent-proxy health` asks /_consent/health on the port CONSENT_PROXY_LISTEN names.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["consent-proxy", "health"]

STOPSIGNAL SIGTERM
CMD ["consent-proxy", "serve"]
