# Sourced by .ci/run (as root): installs the PostgreSQL server from Debian's packages unless it
# is there, starts a throwaway cluster on 127.0.0.1 with password logins, and exports
# NAS_TEST_POSTGRES_URL for tests/test_postgres.py. The server is stopped and its folder removed
# when the calling script exits, whatever the outcome.

pg_bin() { printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1; }
PG_BIN=$(pg_bin)
if [[ ! -x $PG_BIN/initdb ]]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
  PG_BIN=$(pg_bin)
fi

PG_DIR=$(mktemp -d /tmp/nas-postgres.XXXXXX)
trap 'runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1
      rm -rf "$PG_DIR"' EXIT
chown postgres: "$PG_DIR"
as_postgres() { runuser -u postgres -- "$@"; }

PG_PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PG_PASSWORD=$(python -c 'import secrets; print(secrets.token_hex(16))')

as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -E UTF8 --no-locale \
  --auth-local=peer --auth-host=scram-sha-256 >"$PG_DIR/initdb.log"
cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
EOF
if ! as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w start; then
  cat "$PG_DIR/server.log" >&2
  exit 1
fi

# Over the unix socket in $PG_DIR (peer authentication); the password goes on stdin.
as_postgres "$PG_BIN/psql" -h "$PG_DIR" -p "$PG_PORT" -X -q -v ON_ERROR_STOP=1 <<EOF
CREATE ROLE nas LOGIN PASSWORD '$PG_PASSWORD';
CREATE DATABASE nas OWNER nas;
EOF

export NAS_TEST_POSTGRES_URL="postgresql+psycopg2://nas:$PG_PASSWORD@127.0.0.1:$PG_PORT/nas"
export NAS_REQUIRE_POSTGRES=1
