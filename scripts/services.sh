#!/usr/bin/env bash
# Makes sure the real PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) that the
# test suite talks to are up: starts them when they are installed but down, installs them from
# Debian's packages when they are missing. Also installs the programs some tests drive when they
# are missing: Chromium (test/browser) and Prometheus with promtool (test/e2e/prometheus.test.ts).
# Safe to run again and again.
set -euo pipefail

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { [ "$( (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3) 2>/dev/null)" = "+PONG" ]; }
wait_for() { for _ in $(seq 1 60); do "$1" && return 0; sleep 0.5; done; return 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! pg_up; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "services: installing PostgreSQL from Debian's packages" >&2
    apt_install postgresql
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      # Tests connect as postgres over TCP without a password, as on the machines CI runs on.
      printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' | as_root tee "$hba.chatedge" >/dev/null
      as_root sh -c "cat '$hba' >> '$hba.chatedge' && mv '$hba.chatedge' '$hba'"
    done
  fi
  echo "services: starting PostgreSQL" >&2
  for v in $(ls /etc/postgresql); do as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start || true; done
  wait_for pg_up || { echo "services: PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi

# The four test projects run at once, and the CI-size load test alone holds up to a hundred
# connections through its relay (one per in-flight request, as a Worker's pool does): Debian's
# default of 100 was exhausted once ("too many clients"). Raised once per machine, with a restart.
pg_max="$(psql -h 127.0.0.1 -U postgres -Atc 'show max_connections' 2>/dev/null || echo 0)"
if [ "${pg_max:-0}" -lt 300 ] 2>/dev/null; then
  echo "services: raising PostgreSQL's max_connections from ${pg_max:-?} to 300 (restart)" >&2
  psql -h 127.0.0.1 -U postgres -qc "alter system set max_connections = 300" >/dev/null
  for v in $(ls /etc/postgresql); do as_root pg_ctlcluster --skip-systemctl-redirect "$v" main restart || true; done
  wait_for pg_up || { echo "services: PostgreSQL did not come back on 127.0.0.1:5432" >&2; exit 1; }
fi

if ! redis_up; then
  command -v redis-server >/dev/null 2>&1 || { echo "services: installing Redis from Debian's packages" >&2; apt_install redis-server; }
  echo "services: starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis_up || { echo "services: Redis did not come up on 127.0.0.1:6379" >&2; exit 1; }
fi
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || missing="$missing prometheus"
if [ -n "$missing" ]; then
  echo "services: installing$missing from Debian's packages (test tools)" >&2
  # shellcheck disable=SC2086
  apt_install $missing
fi
echo "services: PostgreSQL and Redis are up" >&2
