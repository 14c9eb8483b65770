# The controller's image, for machines with Docker: docker build -t pyrollouts:0.1.0 .
# `make image` builds the same image (layout, user, entrypoint, labels) without Docker: see image/build.sh.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY crds crds
COPY analysis analysis
COPY rollouts rollouts
# rollouts/crds links to ../crds (copied above), so the wheel carries the CRDs as package data.
RUN pip wheel --no-cache-dir --no-deps -w /wheels . \
 && python -m venv /opt/pyrollouts \
 && /opt/pyrollouts/bin/pip install --no-cache-dir /wheels/pyrollouts-*.whl \
 && /opt/pyrollouts/bin/pip uninstall -q -y pip

FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="pyrollouts" \
      org.opencontainers.image.description="Progressive delivery for Kubernetes: the pyrollouts controller" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/pyrollouts/pyrollouts" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="python:3.11-slim-bookworm"
RUN groupadd --gid 10001 pyrollouts \
 && useradd --uid 10001 --gid 10001 --home-dir /home/pyrollouts --create-home --shell /usr/sbin/nologin pyrollouts
COPY --from=build /opt/pyrollouts /opt/pyrollouts
ENV PATH=/opt/pyrollouts/bin:$PATH PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/pyrollouts
ENTRYPOINT ["pyrollouts", "controller"]
