# Dibao service image: one image for every service; the command picks the
# service (default: intake). Built by docker-compose.yml.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The `dibao` CLI runs from site-packages, where shared.config's default
# (repo root / config.yml) doesn't exist: point it at the copied repo.
ENV DIBAO_CONFIG=/app/config.yml

# fonts-wqy-zenhei: the TrueType CJK font the printable notice PDFs embed
# (keep in step with DEB_PACKAGES in the Makefile).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-wqy-zenhei \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, in their own layer, so a code change doesn't reinstall them.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY . .
RUN pip install -c constraints.txt . \
 && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home dibao \
 && mkdir -p /data /app/var \
 && chown dibao:dibao /data /app/var

# DATA_DIR in deployment (docker-compose mounts a named volume here; the
# volume takes this directory's owner on first use).
VOLUME ["/data"]
USER dibao

CMD ["nameko", "run", "--config", "config.yml", "services.intake.service"]
