# Media Lab: one image for bot, worker, web and the one-shot migration (docker-compose.yml
# chooses the command). Slim Python, dependencies in their own cached layer, non-root user.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# OpenCV's headless wheel still links GLib; nothing else is needed at run time (the
# healthchecks use Python, not curl).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin medialab
WORKDIR /app

# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes, not on
# every code change. Empty packages let pip resolve the project without its code.
COPY pyproject.toml README.md ./
# Only the main dependencies: the sandbox's own (the [sandbox] extra) stay out.
RUN mkdir -p billing imaging texts tg jobqueue bot workers web \
 && touch billing/__init__.py imaging/__init__.py texts/__init__.py tg/__init__.py \
          jobqueue/__init__.py bot/__init__.py workers/__init__.py web/__init__.py \
 && pip install . \
 && pip uninstall -y media-lab \
 && rm -rf billing imaging texts tg jobqueue bot workers web

# The code (.dockerignore keeps the sandbox out), owned by root, read-only for the service user.
COPY . .
RUN pip install --no-deps . && python -m compileall -q billing imaging texts tg jobqueue bot workers web alembic

USER medialab
EXPOSE 8080
CMD ["python", "-m", "bot"]
