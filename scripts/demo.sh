#!/usr/bin/env bash
# Bake the default project into .demo/ and run it in the foreground (make demo).
# PostgreSQL and Redis must be up on localhost; a re-run re-bakes over the last demo and
# keeps its .venv/ and .env.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
COOKIECUTTER=${COOKIECUTTER:-.venv/bin/cookiecutter}
UV=${UV:-$(command -v uv || true)}   # the project's make install uses uv.lock with it, else pip
DEMO_USER=demo
DEMO_PASSWORD=${DEMO_PASSWORD:-demo-password}
PROJECT=.demo/realtime_chat   # the default project_slug, from the default project_name

if ! python3 scripts/check_services.py; then
    echo "make demo needs PostgreSQL and Redis: start the one named above, then run make demo again." >&2
    exit 1
fi

"$COOKIECUTTER" . --no-input --overwrite-if-exists --output-dir .demo
cd "$PROJECT"
make install PYTHON="$PYTHON" UV="$UV"
make migrate

# createsuperuser --noinput fails when the user exists: that is fine for a re-run.
if ! out=$(DJANGO_SUPERUSER_USERNAME=$DEMO_USER DJANGO_SUPERUSER_PASSWORD=$DEMO_PASSWORD \
        DJANGO_SUPERUSER_EMAIL=demo@example.com \
        .venv/bin/python manage.py createsuperuser --noinput 2>&1); then
    if ! grep -qi "already" <<<"$out"; then
        echo "$out" >&2
        exit 1
    fi
fi

cat <<MSG

  The demo project is in $PROJECT
  Open http://127.0.0.1:8000/ and log in as: $DEMO_USER / $DEMO_PASSWORD
  (an existing demo user keeps the password it was created with)
  Stop with Ctrl-C.

MSG
export PORT=8000
exec make run
