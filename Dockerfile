# The registry as an operator runs it: against an external PostgreSQL (DATABASE_URL).
FROM python:3.11-slim

# Development keys off: a missing signing or personal-data key is an error, never made up.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    REGISTRY_HOME=/var/lib/registry REGISTRY_LOG_FORMAT=json REGISTRY_DEV_KEYS=0
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY registry ./registry
COPY schema ./schema
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --home-dir /var/lib/registry registry \
    && mkdir -p /var/lib/registry/keys && chown -R registry /var/lib/registry
USER registry
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
CMD ["registry", "serve", "--host", "0.0.0.0", "--port", "8000"]
