# trackpulse serve in a container: slim Python base, non-root user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY connectors ./connectors
COPY jobs ./jobs
RUN pip install . && useradd --system --uid 10001 --home-dir /var/lib/trackpulse --create-home trackpulse
USER trackpulse
WORKDIR /var/lib/trackpulse
ENV TRACKPULSE_CONFIG=/etc/trackpulse/trackpulse.toml
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=4)" || exit 1
STOPSIGNAL SIGTERM
CMD ["trackpulse", "serve", "--host", "0.0.0.0", "--port", "8787"]
