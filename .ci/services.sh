#!/usr/bin/env bash
# The system services the integration tests drive for real, from Debian packages:
# chromium and chromedriver (tests/integration/test_ui.py) and a running PostgreSQL with a
# role and database for tests/integration/test_tracking_server.py, whose URI the tests
# connect to. Prints that URI (and only that) on stdout; `make test` runs this first and
# hands the URI to the tests in SENTIPIPE_TEST_POSTGRES_URI. A URI already in that variable
# is used as it is, and no local PostgreSQL is touched. Safe to rerun: installed packages
# and a running cluster are kept. Needs root or sudo only when something is missing.
set -euo pipefail
exec 3>&1 1>&2  # everything but the URI goes to stderr

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() { (cd / && if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi); }

packages=()
# A browser already there (chromium, or Chrome as on GitHub's runners) is used as it is.
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
  || packages+=(chromium)
command -v chromedriver >/dev/null || packages+=(chromium-driver)
if [ -z "${SENTIPIPE_TEST_POSTGRES_URI:-}" ]; then
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || packages+=(postgresql)
fi
if [ "${#packages[@]}" -gt 0 ]; then
  echo "ci: apt-get install ${packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

echo "ci: $(chromedriver --version | cut -d' ' -f1-2)"
if [ -n "${SENTIPIPE_TEST_POSTGRES_URI:-}" ]; then
  echo "$SENTIPIPE_TEST_POSTGRES_URI" >&3
  exit 0
fi

# PostgreSQL: the newest installed major version, its first cluster (made if there is none), started.
pg_version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
read -r pg_cluster pg_port pg_status < <(pg_lsclusters -h | awk -v v="$pg_version" '$1 == v {print $2, $3, $4; exit}') || true
if [ -z "${pg_cluster:-}" ]; then
  as_root pg_createcluster "$pg_version" main >/dev/null 3>&-
  read -r pg_cluster pg_port pg_status < <(pg_lsclusters -h | awk -v v="$pg_version" '$1 == v {print $2, $3, $4; exit}')
fi
case "$pg_status" in
  online*) ;;
  *) as_root pg_ctlcluster "$pg_version" "$pg_cluster" start 3>&- ;;  # the server must not hold the URI pipe open
esac
for _ in $(seq 60); do
  pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p "$pg_port"

# A login role that may create databases (the test makes a fresh one per run) and its own database.
as_postgres psql -p "$pg_port" -v ON_ERROR_STOP=1 -qAt <<'SQL' >/dev/null
SELECT CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = 'sentipipe')
  THEN 'ALTER ROLE sentipipe LOGIN CREATEDB PASSWORD ''sentipipe'''
  ELSE 'CREATE ROLE sentipipe LOGIN CREATEDB PASSWORD ''sentipipe''' END \gexec
SELECT 'CREATE DATABASE sentipipe OWNER sentipipe'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sentipipe') \gexec
SQL
echo "ci: PostgreSQL $pg_version/$pg_cluster on port $pg_port"
echo "postgresql://sentipipe:sentipipe@127.0.0.1:${pg_port}/sentipipe" >&3
