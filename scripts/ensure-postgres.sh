#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432: starts the installed cluster if it
# is stopped, installs Debian's package if there is none. Then creates the app database.
set -euo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! ready; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "installing PostgreSQL (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    conf=$(ls -d /etc/postgresql/*/main | head -n1)
    # Local development only: trust connections from this machine, as the dev machines do.
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
  fi
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
  ready || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/hypervisor}
db=${url##*/}; db=${db%%\?*}
admin="${url%/*}/postgres"
if [ -n "$db" ] && ! psql -qtA "$admin" -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  psql -q "$admin" -c "CREATE DATABASE \"$db\""
  echo "created database $db"
fi
