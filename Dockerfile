# wsstar rendezvous server
#   docker build -t wsstar .
#   docker run -d -p 9090:9090 --name wsstar wsstar
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WSSTAR_STATE_FILE=/tmp/wsstar-state.json

# Sources are installed from a scratch folder that goes in the same layer,
# so no build/ or *.egg-info stays in the image.
COPY pyproject.toml README.md /tmp/src/
COPY wsstar /tmp/src/wsstar
RUN pip install '/tmp/src[fast,cluster]' \
 && rm -rf /tmp/src \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin wsstar

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001
WORKDIR /tmp
EXPOSE 9090
# The server writes its real address (port from flag or PORT, http or https)
# and instance id to WSSTAR_STATE_FILE; the check asks that very server.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["wsstar-server", "healthcheck"]

# Python handles SIGTERM/SIGINT itself and shuts down cleanly, so no init shim is needed.
ENTRYPOINT ["wsstar-server"]
