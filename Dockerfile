# The course image: JupyterLab + the locked course environment + the mlops_course package.
#
#   docker build -t mlops-course .
#   docker run --rm -p 8888:8888 mlops-course        # then open the http://127.0.0.1:8888/lab?token=... URL it prints
#   docker run --rm -it mlops-course make test       # everything CI runs (the image is its own git repository)
#
# The lock is resolved for x86_64 Linux: on an ARM machine (Apple silicon) build and run with
# `--platform linux/amd64`. The environment is about 1.3 GB; the image about 1.8 GB.
#
# Binder (mybinder.org) builds this same file: a repository with a root Dockerfile needs no binder/
# folder. Binder builds with `--build-arg NB_USER=... --build-arg NB_UID=...`, expects the user to have
# uid 1000 and the repository in ${HOME} owned by that user, and starts the container with its own
# command, `jupyter notebook --ip=0.0.0.0 --port=8888 --NotebookApp.token=... <more flags>`, which
# replaces the CMD below. That is why `notebook` is installed next to JupyterLab, why the ENTRYPOINT
# only wraps the command (tini execs whatever it is given), and why the README's Binder badge carries
# `?urlpath=lab/tree/notebooks/index.ipynb` to land on the start page.
#
# Codespaces (.devcontainer/devcontainer.json) builds this file too and links the workspace's .venv
# to the environment installed here.
#
# Layer order is for the build cache: system packages, user, the lock (changes rarely), then the
# course files (change often). Editing a notebook rebuilds only the last layers. The environment is
# installed in a stage of its own and copied into the image, so whatever the installer needed (pip's
# certificates, uv's downloads) stays out of the image's layers.

# An exact tag (Debian 13 "trixie", Python 3.11.14). To pin harder, append the digest that
# `docker buildx imagetools inspect python:3.11.14-slim-trixie` prints: `FROM python:...@sha256:...`.
# A machine without a registry passes a base it has: `--build-arg BASE_IMAGE=...` (deploy/docker/offline-base.sh
# makes one from Debian packages).
ARG BASE_IMAGE=python:3.11.14-slim-trixie
# The certificates pip and uv trust while installing: the base image's own by default. Behind a
# TLS-inspecting proxy, pass an image holding that machine's bundle (deploy/docker/images.py makes one):
# only the environment stage reads it, so it is in no layer of the image.
ARG CA_IMAGE=python:3.11.14-slim-trixie

FROM ${CA_IMAGE} AS ca

# ---- system: Debian packages and the user, shared by the two stages below ---------------------------
FROM ${BASE_IMAGE} AS system

ARG NB_USER=jovyan
ARG NB_UID=1000

LABEL org.opencontainers.image.title="mlops-course" \
      org.opencontainers.image.description="A 24-week MLOps course: JupyterLab with the locked course environment" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/mlops-course/mlops-course" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-trixie"

ENV USER=${NB_USER} \
    NB_USER=${NB_USER} \
    NB_UID=${NB_UID} \
    HOME=/home/${NB_USER} \
    VIRTUAL_ENV=/home/${NB_USER}/.venv \
    PATH=/home/${NB_USER}/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    MPLBACKEND=Agg \
    DEBIAN_FRONTEND=noninteractive

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# git: DVC and nbdev (week 03, grading); make: the course's commands; tini: reaps the kernels'
# children as PID 1; prometheus: Prometheus and promtool for weeks 10-11; prometheus-alertmanager:
# Alertmanager and amtool, the alerts of week 11 delivered end to end.
# Debian package versions are not pinned: the archive drops superseded versions, so a pinned
# slim-image build breaks within weeks; the pinned base tag fixes the Debian release instead.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git make tini prometheus prometheus-alertmanager \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --shell /bin/bash --uid "${NB_UID}" --user-group "${NB_USER}"

USER ${NB_USER}
WORKDIR ${HOME}

# ---- environment: the lock installed at ~/.venv, where the Makefile expects it -----------------------
FROM system AS environment
ARG UV_VERSION=0.13.8
COPY --from=ca /etc/ssl/certs/ca-certificates.crt /tmp/ca-certificates.crt
COPY --chown=${NB_UID}:${NB_UID} requirements/lock.txt requirements/lock.txt
RUN python -m venv "${VIRTUAL_ENV}" \
 && pip install --no-cache-dir --cert /tmp/ca-certificates.crt "uv==${UV_VERSION}" \
 && SSL_CERT_FILE=/tmp/ca-certificates.crt uv pip install --compile-bytecode -r requirements/lock.txt

# ---- the course image ----------------------------------------------------------------------------------
FROM system AS course

COPY --from=environment --chown=${NB_UID}:${NB_UID} ${VIRTUAL_ENV} ${VIRTUAL_ENV}
# JupyterLab's settings for everyone using this environment: no "get Jupyter news?" pop-up on first start
COPY --chown=${NB_UID}:${NB_UID} deploy/docker/jupyterlab-overrides.json \
     ${VIRTUAL_ENV}/share/jupyter/lab/settings/overrides.json

# The course itself (.dockerignore keeps .venv, workspace/, .git and caches out), installed editable
# so that `nbdev-export` after editing a notebook changes what `import mlops_course` sees. The image
# is a git repository of its own (one commit of the course files): `make test` and DVC need one.
# JupyterLab offers the environment's own kernel, "Python 3 (ipykernel)", the kernel every notebook names.
COPY --chown=${NB_UID}:${NB_UID} . ${HOME}
RUN uv pip install --compile-bytecode --no-deps --no-build-isolation -e . \
 && mkdir -p workspace \
 && touch "${VIRTUAL_ENV}/.installed" \
 && git init --quiet --initial-branch=main \
 && git add --all \
 && git -c user.name=mlops-course -c user.email=mlops-course@users.noreply.github.com commit --quiet -m "the course as built into this image" \
 && python -c "import mlops_course, mlops_course.config"

EXPOSE 8888

# /api answers without a token: is the Jupyter server up? Under Binder and JupyterHub the server lives
# below the prefix they set in JUPYTERHUB_SERVICE_PREFIX (e.g. /user/<name>/), so the probe goes there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; prefix = os.environ.get('JUPYTERHUB_SERVICE_PREFIX', '/').rstrip('/'); urllib.request.urlopen(f'http://127.0.0.1:8888{prefix}/api', timeout=4)"]

# The server's root is its working directory, ${HOME} (WORKDIR above), whatever NB_USER is.
ENTRYPOINT ["tini", "-g", "--"]
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", \
     "--LabApp.default_url=/lab/tree/notebooks/index.ipynb"]
