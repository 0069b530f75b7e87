#!/usr/bin/env bash
# The services the cluster tests use, provisioned on this machine: PostgreSQL with the database and role of
# PG_URL (default postgres://postgres@127.0.0.1:5432/test, as test/contract/postgres.test.ts and
# test/integration/cluster-fixture.ts read it) and Redis at REDIS_URL (default redis://127.0.0.1:6379).
#
#   bash scripts/provision-services.sh          (root, or a user who may sudo; Debian/Ubuntu for installing)
#
# When both answer already it checks that and exits (well under a second), changing nothing. Otherwise, for
# what is missing: installs the packages (apt-get), creates a PostgreSQL cluster on PG_URL's port if there is
# none, starts it and Redis (through systemd where it runs, directly where there is no service manager:
# pg_ctlcluster --skip-systemctl-redirect, redis-server --daemonize yes), creates the role and the database,
# and, when PG_URL has no password, lets that role reach that database from the loopback address without one
# (a `trust` line for exactly that database, role and 127.0.0.1/::1 at the top of pg_hba.conf, marked with
# this script's name): fine for a CI machine or your own; on a shared machine give PG_URL a password instead.
# Services on another host are only checked. Idempotent: a second run finds everything and does nothing.
set -euo pipefail

PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
root=$(cd "$(dirname "$0")/.." && pwd)
MARK="# switchboard tests (scripts/provision-services.sh)"

say() { echo "provision-services: $*"; }
die() {
  echo "provision-services: $*" >&2
  exit 1
}

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
as_root() {
  if [ -z "$SUDO" ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else die "needs root for: $*"; fi
}
as_postgres() {
  if [ -z "$SUDO" ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "install $* yourself (no apt-get here), then run this again"
  say "installing $*"
  as_root flock /tmp/apt.lock sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $* >/dev/null"
}
has_systemd() { [ -d /run/systemd/system ]; }
is_local() { case "$1" in 127.0.0.1 | localhost | ::1 | '[::1]') return 0 ;; *) return 1 ;; esac }
# wait_for SECONDS COMMAND...: poll (every 0.2 s) until the command succeeds.
wait_for() {
  local n=$(($1 * 5))
  shift
  until "$@"; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || return 1
    sleep 0.2
  done
}

# --- the URLs -------------------------------------------------------------------------------------------------
re='^postgres(ql)?://([A-Za-z0-9_]+)(:([^@]*))?@([^:/?]+)(:([0-9]+))?/([A-Za-z0-9_]+)([?].*)?$'
[[ $PG_URL =~ $re ]] || die "PG_URL=$PG_URL: expected postgres://ROLE[:PASSWORD]@HOST[:PORT]/DATABASE (letters, digits, _)"
pg_user=${BASH_REMATCH[2]} pg_pass=${BASH_REMATCH[4]} pg_host=${BASH_REMATCH[5]} pg_port=${BASH_REMATCH[7]:-5432} pg_db=${BASH_REMATCH[8]}
pg_pass=$(printf '%b' "${pg_pass//%/\\x}") # the URL's percent-encoding, as the clients decode it
re='^rediss?://([^@/]*@)?([^:/]+)(:([0-9]+))?/?[0-9]*$'
[[ $REDIS_URL =~ $re ]] || die "REDIS_URL=$REDIS_URL: expected redis://HOST[:PORT]"
redis_host=${BASH_REMATCH[2]} redis_port=${BASH_REMATCH[4]:-6379}

# --- checks: what the tests will do ---------------------------------------------------------------------------
pg_error=""
pg_ok() {
  if command -v psql >/dev/null 2>&1; then
    pg_error=$(PGCONNECT_TIMEOUT=3 psql "$PG_URL" -Atqc 'select 1' 2>&1 >/dev/null) && return 0
  elif [ -d "$root/node_modules/pg" ]; then
    pg_error=$(cd "$root" && PG_URL="$PG_URL" node -e '
      const c = new (require("pg").Client)({ connectionString: process.env.PG_URL, connectionTimeoutMillis: 3000 })
      c.connect().then(() => c.end()).catch((e) => { console.error(e.message); process.exit(1) })' 2>&1) && return 0
  else
    pg_error="no client to check with (psql, or the pg package)"
  fi
  return 1
}
redis_ok() {
  # PING over a plain socket (bash's /dev/tcp): no client needed.
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 && IFS= read -r line <&3 && [ "${line%$'"'"'\r'"'"'}" = "+PONG" ]' \
    "$redis_host" "$redis_port" 2>/dev/null
}

# --- Redis ----------------------------------------------------------------------------------------------------
provision_redis() {
  is_local "$redis_host" || die "Redis at $REDIS_URL does not answer PING; it is on another host: start it there"
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
    redis_ok && return 0 # the package started it
  fi
  if has_systemd && [ "$redis_port" = 6379 ]; then
    say "starting redis-server (systemd)"
    as_root systemctl start redis-server
  else
    # No service manager (a container, a CI machine): a private Redis for the tests, no persistence.
    say "starting redis-server on $redis_host:$redis_port (daemonized; log /tmp/switchboard-redis-$redis_port.log)"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
      --logfile "/tmp/switchboard-redis-$redis_port.log" --pidfile "/tmp/switchboard-redis-$redis_port.pid" >/dev/null
  fi
  wait_for 10 redis_ok || die "Redis did not answer on $redis_host:$redis_port within 10 s"
}

# --- PostgreSQL -----------------------------------------------------------------------------------------------
# "VERSION NAME STATUS" of the local cluster on $pg_port, or nothing.
cluster_on_port() { pg_lsclusters -h 2>/dev/null | awk -v p="$pg_port" '$3 == p { print $1, $2, $4; exit }'; }
admin_sql() { as_postgres psql -p "$pg_port" -d postgres -v ON_ERROR_STOP=1 -Atqc "$1"; }

provision_postgres() {
  is_local "$pg_host" || die "PostgreSQL at $PG_URL does not answer ($pg_error); it is on another host: provision it there"
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  if pg_ok; then return 0; fi
  if ! command -v pg_lsclusters >/dev/null 2>&1 || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$pg_host" -p "$pg_port" &&
      die "a PostgreSQL server answers on port $pg_port but refuses $PG_URL ($pg_error), and it is not one this script manages"
    apt_install postgresql
  fi
  local cluster ver name status
  cluster=$(cluster_on_port)
  if [ -z "$cluster" ]; then
    ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
    name=main
    [ -d "/etc/postgresql/$ver/main" ] && name="switchboard$pg_port"
    say "creating the PostgreSQL cluster $ver/$name on port $pg_port"
    as_root pg_createcluster "$ver" "$name" --port "$pg_port" >/dev/null
    cluster="$ver $name down"
  fi
  read -r ver name status <<<"$cluster"
  if [ "$status" != online ]; then
    say "starting the PostgreSQL cluster $ver/$name"
    if has_systemd; then as_root pg_ctlcluster "$ver" "$name" start; else as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start; fi
  fi
  wait_for 30 pg_isready -q -h 127.0.0.1 -p "$pg_port" || die "PostgreSQL $ver/$name did not accept connections within 30 s"

  if [ "$(admin_sql "SELECT 1 FROM pg_roles WHERE rolname = '$pg_user'")" != 1 ]; then
    say "creating the role $pg_user"
    admin_sql "CREATE ROLE \"$pg_user\" LOGIN"
  fi
  if [ -n "$pg_pass" ]; then
    admin_sql "ALTER ROLE \"$pg_user\" LOGIN PASSWORD '${pg_pass//\'/\'\'}'" >/dev/null
  fi
  if [ "$(admin_sql "SELECT 1 FROM pg_database WHERE datname = '$pg_db'")" != 1 ]; then
    say "creating the database $pg_db (owner $pg_user)"
    admin_sql "CREATE DATABASE \"$pg_db\" OWNER \"$pg_user\""
  fi
  if ! pg_ok && [ -z "$pg_pass" ]; then
    local hba
    hba=$(admin_sql 'SHOW hba_file')
    if ! as_root grep -qF "$MARK" "$hba"; then
      say "letting $pg_user reach $pg_db from the loopback address without a password ($hba)"
      # Prepended (the first matching line wins); written through cat so the file keeps its owner.
      as_root sh -c '{ printf "%s\n" "$1" "$2" "$3"; cat "$0"; } >"$0.sb-new" && cat "$0.sb-new" >"$0" && rm "$0.sb-new"' \
        "$hba" "$MARK" "host $pg_db $pg_user 127.0.0.1/32 trust" "host $pg_db $pg_user ::1/128 trust"
      admin_sql 'SELECT pg_reload_conf()' >/dev/null
    fi
  fi
  wait_for 5 pg_ok || die "PostgreSQL still refuses $PG_URL: $pg_error"
}

# --- the run --------------------------------------------------------------------------------------------------
pg_state=present redis_state=present
pg_ok || {
  provision_postgres
  pg_state=provisioned
}
redis_ok || {
  provision_redis
  redis_state=provisioned
}
say "PostgreSQL $PG_URL: $pg_state; Redis $REDIS_URL: $redis_state"
