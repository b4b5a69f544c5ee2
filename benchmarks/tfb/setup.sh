#!/usr/bin/env bash
# Sets up the TechEmpower database on this machine; safe to run again (idempotent).
# Run as root on Debian 12 (no systemd needed):
#
#   benchmarks/tfb/setup.sh                 # install, start, create user, database, tables
#   benchmarks/tfb/setup.sh --cpus 0        # start the postmaster under `taskset -c 0`
#
# - installs PostgreSQL with apt-get when it is missing;
# - starts the newest installed cluster if it is down (pg_ctlcluster); with --cpus a
#   running cluster is moved onto those CPUs (the postmaster and its processes; new
#   backends inherit the postmaster's affinity);
# - creates role `benchmarkdbuser` (password `benchmarkdbpass`) and database
#   `hello_world` owned by it, with TechEmpower's tables: World (10,000 rows, random
#   numbers 1..10000) and Fortune (the 12 standard rows);
# - sets `synchronous_commit = off` on the database, as TechEmpower's own config does;
# - lets the user log in with its password over the Unix socket too (pg_hba.conf);
# - checks a password login over TCP on 127.0.0.1 and over the Unix socket.
set -euo pipefail

cpus=
while [ $# -gt 0 ]; do
    case "$1" in
        --cpus) cpus="${2:?--cpus needs a CPU list}"; shift 2 ;;
        --cpus=*) cpus="${1#--cpus=}"; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

say() { echo "setup.sh: $*"; }
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }

if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
    say "installing PostgreSQL"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
else
    say "PostgreSQL already installed"
fi

# The newest installed major version, and its first cluster (Debian names it `main`).
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
cluster=$(pg_lsclusters -h | awk -v v="$version" '$1 == v { print $2; exit }')
if [ -z "$cluster" ]; then
    say "creating cluster $version main"
    pg_createcluster "$version" main
    cluster=main
fi
port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $3 }')

status=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $4 }')
if [ "$status" != online ]; then
    if [ -n "$cpus" ]; then
        say "starting cluster $version/$cluster under taskset -c $cpus"
        taskset -c "$cpus" pg_ctlcluster "$version" "$cluster" start
    else
        say "starting cluster $version/$cluster"
        pg_ctlcluster "$version" "$cluster" start
    fi
else
    say "cluster $version/$cluster already running"
    if [ -n "$cpus" ]; then
        pidfile="/var/run/postgresql/$version-$cluster.pid"
        postmaster=$(head -1 "$pidfile")
        # The postmaster and every process it has started; later backends inherit.
        for pid in $postmaster $(pgrep -P "$postmaster" || true); do
            taskset -a -p -c "$cpus" "$pid" >/dev/null
        done
        say "moved the running postmaster ($postmaster) and its processes to CPUs $cpus"
    fi
fi

psql_admin() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qAt "$@"; }

# Password logins for the benchmark user over the Unix socket too (Debian's default is
# `peer`, which only lets an OS user of the same name in): the first matching line wins,
# so it goes before the others.
hba="/etc/postgresql/$version/$cluster/pg_hba.conf"
hba_line="local   hello_world     benchmarkdbuser                         scram-sha-256"
if [ -f "$hba" ] && ! grep -qF "$hba_line" "$hba"; then
    { echo "# benchmarks/tfb/setup.sh: password login over the Unix socket"; echo "$hba_line"; cat "$hba"; } > "$hba.new"
    chown --reference="$hba" "$hba.new"
    chmod --reference="$hba" "$hba.new"
    mv "$hba.new" "$hba"
    pg_ctlcluster "$version" "$cluster" reload
    say "pg_hba.conf: benchmarkdbuser may log in with its password over the Unix socket"
fi

for _ in $(seq 50); do
    psql_admin -c 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.2
done

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'benchmarkdbuser'")" != 1 ]; then
    say "creating role benchmarkdbuser"
    psql_admin -c "CREATE ROLE benchmarkdbuser LOGIN PASSWORD 'benchmarkdbpass'"
else
    # Keep the password what the benchmarks expect, whatever it was.
    psql_admin -c "ALTER ROLE benchmarkdbuser LOGIN PASSWORD 'benchmarkdbpass'"
    say "role benchmarkdbuser exists"
fi

if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'hello_world'")" != 1 ]; then
    say "creating database hello_world"
    psql_admin -c "CREATE DATABASE hello_world OWNER benchmarkdbuser ENCODING 'UTF8' TEMPLATE template0"
else
    say "database hello_world exists"
fi
psql_admin -c "ALTER DATABASE hello_world SET synchronous_commit = off"

# Tables as the benchmark user, so it owns them.
export PGPASSWORD=benchmarkdbpass
psql_user() {
    psql -h 127.0.0.1 -p "$port" -U benchmarkdbuser -d hello_world -v ON_ERROR_STOP=1 -qAt "$@"
}

psql_user <<'SQL'
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS World (
  id integer NOT NULL,
  randomNumber integer NOT NULL default 0,
  PRIMARY KEY (id)
);
CREATE TABLE IF NOT EXISTS Fortune (
  id integer NOT NULL,
  message varchar(2048) NOT NULL,
  PRIMARY KEY (id)
);
SQL

world_rows=$(psql_user -c "SELECT count(*) FROM World WHERE id BETWEEN 1 AND 10000")
world_all=$(psql_user -c "SELECT count(*) FROM World")
if [ "$world_rows" != 10000 ] || [ "$world_all" != 10000 ]; then
    say "filling World with 10,000 rows"
    psql_user <<'SQL'
BEGIN;
DELETE FROM World;
INSERT INTO World (id, randomNumber)
  SELECT x, least(floor(random() * 10000 + 1), 10000)::integer FROM generate_series(1, 10000) AS x;
COMMIT;
SQL
else
    say "World already has 10,000 rows"
fi

# Fortune: always rewritten, so a stray edit can't survive a setup.
psql_user <<'SQL'
BEGIN;
DELETE FROM Fortune;
INSERT INTO Fortune (id, message) VALUES
  (1, 'fortune: No such file or directory'),
  (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
  (3, 'After enough decimal places, nobody gives a damn.'),
  (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
  (5, 'A computer program does what you tell it to do, not what you want it to do.'),
  (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
  (7, 'Any program that runs right is obsolete.'),
  (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
  (9, 'Feature: A bug with seniority.'),
  (10, 'Computers make very fast, very accurate mistakes.'),
  (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
  (12, 'フレームワークのベンチマーク');
COMMIT;
ANALYZE World;
ANALYZE Fortune;
SQL
say "Fortune has its 12 rows"

# The check the benchmarks rely on: a password login over TCP.
check=$(psql_user -c "SELECT count(*) FROM World" -c "SELECT count(*) FROM Fortune" -c "SHOW synchronous_commit" | tr '\n' ' ')
say "TCP login as benchmarkdbuser@127.0.0.1:$port ok: World, Fortune rows, synchronous_commit = $check"
unix=$(psql -h /var/run/postgresql -p "$port" -U benchmarkdbuser -d hello_world -qAt -c "SELECT 'ok'")
say "Unix-socket login as benchmarkdbuser (/var/run/postgresql) $unix"
say "url: postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:$port/hello_world"
