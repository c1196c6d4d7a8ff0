# Sourced by .ci/run (bash): install Debian's PostgreSQL when missing, start a
# private cluster that listens only on a Unix socket, create a database and a
# user for the tests, and export GOLEM_TEST_POSTGRES with its URL.
#
#   source .ci/postgres.sh          # then: go test ./store/...
#   golem_postgres_stop             # optional: stop the cluster
#
# Idempotent: a second source reuses the running cluster. Works as root (the
# server runs as the postgres user) and as an ordinary user (it runs as you).
# GOLEM_PG_DIR chooses the cluster's folder (default /tmp/golem-postgres).

golem_postgres_start() {
	local dir="${GOLEM_PG_DIR:-/tmp/golem-postgres}"
	local db=golem_test user=golem password=golem-test-password
	local bindir owner

	if ! ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
		echo "postgres.sh: installing postgresql" >&2
		if [ "$(id -u)" != 0 ]; then
			echo "postgres.sh: postgresql is missing and only root can install it" >&2
			return 1
		fi
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 || {
			echo "postgres.sh: apt-get install postgresql failed" >&2
			return 1
		}
	fi
	# The newest installed server.
	bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

	# As root the server runs as postgres; otherwise as the current user.
	if [ "$(id -u)" = 0 ]; then
		owner=postgres
		_golem_pg() { runuser -u postgres -- "$@"; }
	else
		owner="$(id -un)"
		_golem_pg() { "$@"; }
	fi

	mkdir -p "$dir" || return 1
	chown "$owner" "$dir" && chmod 755 "$dir" || return 1
	_golem_pg mkdir -p "$dir/run" && chmod 755 "$dir/run" || return 1

	if [ ! -s "$dir/data/PG_VERSION" ]; then
		rm -rf "$dir/data"
		_golem_pg "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host=reject >"$dir/initdb.log" 2>&1 || {
			cat "$dir/initdb.log" >&2
			echo "postgres.sh: initdb failed" >&2
			return 1
		}
		# Only the Unix socket in $dir/run: no TCP port to collide with.
		cat >>"$dir/data/postgresql.conf" <<-EOF
			listen_addresses = ''
			unix_socket_directories = '$dir/run'
			port = 5432
			fsync = on
			synchronous_commit = on
		EOF
		# The superuser over the socket without a password; everyone
		# else with a SCRAM password.
		cat >"$dir/data/pg_hba.conf" <<-EOF
			local all postgres trust
			local all all scram-sha-256
		EOF
	fi

	if ! _golem_pg "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		_golem_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null || {
			tail -n 30 "$dir/server.log" >&2
			echo "postgres.sh: the server did not start" >&2
			return 1
		}
	fi

	local psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/run" -p 5432 -U postgres -d postgres)
	if [ "$(_golem_pg "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
		_golem_pg "${psql[@]}" -c "CREATE ROLE $user LOGIN PASSWORD '$password'" || return 1
	fi
	if [ "$(_golem_pg "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
		_golem_pg "${psql[@]}" -c "CREATE DATABASE $db OWNER $user" || return 1
	fi

	export GOLEM_PG_DIR="$dir"
	export GOLEM_TEST_POSTGRES="postgres://$user:$password@/$db?host=$dir/run&port=5432&sslmode=disable"
	echo "postgres.sh: PostgreSQL $("$bindir/postgres" -V | awk '{print $3}') ready; GOLEM_TEST_POSTGRES=$GOLEM_TEST_POSTGRES" >&2
}

# golem_postgres_stop stops the cluster golem_postgres_start started.
golem_postgres_stop() {
	local dir="${GOLEM_PG_DIR:-/tmp/golem-postgres}" bindir
	bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
	[ -n "$bindir" ] && [ -d "$dir/data" ] || return 0
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
	else
		"$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
	fi
	return 0
}

golem_postgres_start
