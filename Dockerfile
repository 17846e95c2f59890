# consent-proxy: run in front of your web server; mount your rules at /app/rules.
#   docker build -t consent-proxy .
#   docker run -p 8080:8080 -e CONSENT_PROXY_UPSTREAM=http://web:8000 consent-proxy
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONSENT_PROXY_LISTEN=0.0.0.0:8080 \
    CONSENT_PROXY_RULES=/app/rules

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY rules ./rules
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --no-create-home --home-dir /app consent \
 && chown -R consent /app/rules

USER consent
VOLUME ["/app/rules"]
EXPOSE 8080

# The health endpoint answers loopback callers (the check runs inside the container).
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/_consent/health', timeout=2).status == 200 else 1)"]

STOPSIGNAL SIGTERM
CMD ["consent-proxy", "serve"]
