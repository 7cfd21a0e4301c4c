# wsstar rendezvous server
#   docker build -t wsstar .
#   docker run -d -p 9090:9090 --name wsstar wsstar
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY wsstar ./wsstar
RUN pip install '.[fast]' \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin wsstar

USER wsstar
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '9090'), timeout=4)"]

# Python handles SIGTERM/SIGINT itself and shuts down cleanly, so no init shim is needed.
ENTRYPOINT ["wsstar-server"]
