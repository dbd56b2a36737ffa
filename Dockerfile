# syntax=docker/dockerfile:1
# Herald: one image for every role (`herald serve|api|worker|probe`), chosen by the command.
# The builder stage turns the source into a wheel; the runtime stage installs it over dependencies pinned with hashes
# in requirements.lock, so the image holds no compiler, no source tree and no unpinned package.

# The same minor version as development and CI, so requirements.lock resolves identically.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HERALD_CONFIG=/app/config.yaml \
    HERALD_HTTP_HOST=0.0.0.0 \
    HERALD_PROBE_HOST=0.0.0.0 \
    HERALD_LOG_FORMAT=json
RUN groupadd --system --gid 10001 herald \
 && useradd --system --uid 10001 --gid herald --home-dir /app --no-create-home --shell /usr/sbin/nologin herald
WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY --from=builder /wheels/ /tmp/wheels/
# --no-deps: everything comes from the lock; pip check fails the build if the lock misses one of Herald's needs.
RUN pip install --no-deps /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels \
 && pip check

COPY config.yaml ./
COPY deploy/docker/healthcheck.py ./
USER 10001:10001

# API (http.port), worker health and metrics (http.worker_port), emulator of the external API (probe.port).
EXPOSE 8080 8081 8090
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["python", "/app/healthcheck.py"]
ENTRYPOINT ["herald"]
CMD ["serve"]
