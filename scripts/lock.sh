#!/usr/bin/env bash
# Re-lock the generated project's dependencies (make lock; ARGS=--upgrade for the newest
# versions pyproject.toml allows, ARGS="--upgrade-package django" for one package).
#
# uv cannot lock the template's own pyproject.toml (its name is a Jinja expression), so this
# bakes the default project, runs that project's `make lock` there (uv lock, then the pip
# exports), and copies uv.lock and requirements*.txt back into the template. The lock names
# the project, so its name line goes back as the Jinja expression that renders it; the exports
# are written without annotations and name no project.
set -euo pipefail
cd "$(dirname "$0")/.."

COOKIECUTTER=${COOKIECUTTER:-.venv/bin/cookiecutter}
UV=${UV:-.venv/bin/uv}
SLUG=lockproj  # any valid slug: it is replaced by the expression below
PROJECT_NAME_LINE='name = "{{ cookiecutter.project_slug.split("_") | reject("equalto", "") | join("-") }}"'
TEMPLATE_DIR='{{cookiecutter.project_slug}}'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$COOKIECUTTER" . --no-input --output-dir "$work" "project_slug=$SLUG" >/dev/null
make -C "$work/$SLUG" --no-print-directory lock UV="$(realpath "$UV")" ARGS="${ARGS:-}"

count=$(grep -c "^name = \"$SLUG\"$" "$work/$SLUG/uv.lock" || true)
if [ "$count" != 1 ]; then
    echo "expected one 'name = \"$SLUG\"' line in the bake's uv.lock, found $count" >&2
    exit 1
fi
sed "s/^name = \"$SLUG\"$/$PROJECT_NAME_LINE/" "$work/$SLUG/uv.lock" >"$TEMPLATE_DIR/uv.lock"
cp "$work/$SLUG/requirements.txt" "$work/$SLUG/requirements-dev.txt" "$TEMPLATE_DIR/"
if grep -q "$SLUG" "$TEMPLATE_DIR"/requirements*.txt; then
    echo "the exports name the baked project ($SLUG): they would not fit other bakes" >&2
    exit 1
fi
echo "Locked: $TEMPLATE_DIR/uv.lock, requirements.txt, requirements-dev.txt (review with git diff)."
