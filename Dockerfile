# The course image: JupyterLab + the locked course environment + the mlops_course package.
#
#   docker build -t mlops-course .
#   docker run --rm -p 8888:8888 mlops-course        # then open the http://127.0.0.1:8888/lab?token=... URL it prints
#   docker run --rm -it mlops-course make unit       # the tests (no .git inside: `make test` needs a checkout)
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
# course files (change often). Editing a notebook rebuilds only the last layers.

# An exact tag (Debian 13 "trixie", Python 3.11.14). To pin harder, append the digest that
# `docker buildx imagetools inspect python:3.11.14-slim-trixie` prints: `FROM python:...@sha256:...`.
FROM python:3.11.14-slim-trixie

ARG NB_USER=jovyan
ARG NB_UID=1000
ARG UV_VERSION=0.13.8

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
# children as PID 1; prometheus: Prometheus and promtool for weeks 10-11.
# Debian package versions are not pinned: the archive drops superseded versions, so a pinned
# slim-image build breaks within weeks; the pinned base tag fixes the Debian release instead.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git make tini prometheus \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --shell /bin/bash --uid "${NB_UID}" --user-group "${NB_USER}"

USER ${NB_USER}
WORKDIR ${HOME}

# The environment at ~/.venv, where the Makefile expects it: `make lab`, `make test` reuse it.
COPY --chown=${NB_UID}:${NB_UID} requirements/lock.txt requirements/lock.txt
RUN python -m venv "${VIRTUAL_ENV}" \
 && pip install --no-cache-dir "uv==${UV_VERSION}" \
 && uv pip install --compile-bytecode -r requirements/lock.txt

# The course itself (.dockerignore keeps .venv, workspace/, .git and caches out), installed editable
# so that `nbdev-export` after editing a notebook changes what `import mlops_course` sees.
COPY --chown=${NB_UID}:${NB_UID} . ${HOME}
RUN uv pip install --compile-bytecode --no-deps -e . \
 && python -m ipykernel install --user --name mlops-course --display-name "Python 3 (mlops-course)" \
 && mkdir -p workspace \
 && touch "${VIRTUAL_ENV}/.installed" \
 && python -c "import mlops_course, mlops_course.config"

EXPOSE 8888

# /api answers without a token: is the Jupyter server up?
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8888/api', timeout=4)"]

ENTRYPOINT ["tini", "-g", "--"]
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", \
     "--ServerApp.root_dir=/home/jovyan", "--LabApp.default_url=/lab/tree/notebooks/index.ipynb"]
