# Quorum's image: web (gunicorn), Celery worker and beat all run from it; compose.yaml wires
# them to PostgreSQL, Redis, MLflow and SMTP. Configuration comes from the environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    QUORUM_VAR_DIR=/var/lib/quorum

# The uv that installs from uv.lock, the same version as the Makefile's.
RUN pip install uv==0.13.9

RUN groupadd --system quorum \
    && useradd --system --gid quorum --create-home --home-dir /home/quorum \
       --shell /usr/sbin/nologin quorum

WORKDIR /app

# Dependencies first, so that a change to the code alone reuses this layer.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev

COPY . .

# Static files are collected into the image (STATIC_ROOT is $QUORUM_VAR_DIR/static) and stay
# owned by root. The key is a throwaway that only this step sees; whatever else the settings
# made in the var folder while loading is removed, and the folder is left to the app's user.
RUN mkdir -p "$QUORUM_VAR_DIR" \
    && SECRET_KEY=build-only-not-a-secret python manage.py collectstatic --noinput --verbosity 0 \
    && find "$QUORUM_VAR_DIR" -mindepth 1 -maxdepth 1 ! -name static -exec rm -rf {} + \
    && chown quorum:quorum "$QUORUM_VAR_DIR"

USER quorum
EXPOSE 8000
CMD ["gunicorn", "dashboard.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", \
     "--access-logfile", "-"]
