# syntax=docker/dockerfile:1
# The one image behind web, worker and beat (docker-compose.yml).

# Front-end packages (bootstrap, htmx) come from npm, exactly as package-lock.json pins them;
# settings.STATICFILES_DIRS serves them from node_modules/, so nothing is fetched at run time.
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system --gid 10001 abusedesk \
    && useradd --system --uid 10001 --gid abusedesk --home-dir /app --no-create-home --shell /usr/sbin/nologin abusedesk

# Requirements first: the layer is reused until requirements.txt changes. psycopg2-binary
# ships its own libpq, so no compiler or system packages are needed.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
COPY --from=assets /build/node_modules ./node_modules

# Code stays root-owned (read-only to the app); only var/ and staticfiles/ are writable.
# Static files are collected at build time so the image serves them (whitenoise) even before the
# container's own start-up collectstatic; the dummy values only get settings past their
# production checks and never reach a running container.
RUN DEBUG=false SECRET_KEY=build-only-not-secret ALLOWED_HOSTS=localhost \
        DATABASE_URL=sqlite:////tmp/build.sqlite3 TASKS_IN_PROCESS=true \
        python manage.py collectstatic --no-input --verbosity 1 \
    && rm -f /tmp/build.sqlite3 \
    && mkdir -p /app/var/media /app/var/outbox \
    && chown -R abusedesk:abusedesk /app/var /app/staticfiles

USER abusedesk

EXPOSE 8000

# WEB_CONCURRENCY (read by gunicorn itself) sets the number of worker processes.
# gthread: a request that waits for its commit to reach the disk leaves the worker free for others
# (README, "HTTP API"; bench/bench_api.py).
CMD ["gunicorn", "abusedesk.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "4", \
     "--access-logfile", "-", "--timeout", "60"]
