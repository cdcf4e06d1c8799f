#!/usr/bin/env bash
# Make sure the server binaries the test harness starts (tests/support/) are installed:
# PostgreSQL (initdb, postgres, pg_isready, psql) and redis-server, from Debian's packages.
#
# Usage: scripts/ensure-services.sh [COMMAND[:PACKAGE] ...]
#   Extra arguments name more commands to provide, e.g. `make`, or `ps:procps` when the
#   Debian package has another name.
#
# As root, missing packages are installed with apt-get; otherwise the script says what is
# missing and fails. CEDROS_TEST_POSTGRES_URL / CEDROS_TEST_REDIS_URL (servers that already
# run) lower the need to the PostgreSQL client / nothing.
set -euo pipefail

packages=()

have_postgres_server() {
    local bindir
    if [[ -n "${CEDROS_TEST_POSTGRES_BINDIR:-}" ]]; then
        [[ -x "$CEDROS_TEST_POSTGRES_BINDIR/postgres" ]]
        return
    fi
    for bindir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$bindir/postgres" && -x "$bindir/initdb" && -x "$bindir/pg_isready" \
              && -x "$bindir/psql" ]]; then
            return 0
        fi
    done
    command -v initdb >/dev/null && command -v postgres >/dev/null \
        && command -v pg_isready >/dev/null && command -v psql >/dev/null
}

if [[ -n "${CEDROS_TEST_POSTGRES_URL:-}" ]]; then
    compgen -G '/usr/lib/postgresql/*/bin/psql' >/dev/null || command -v psql >/dev/null \
        || packages+=(postgresql-client)
elif ! have_postgres_server; then
    packages+=(postgresql)
fi

if [[ -z "${CEDROS_TEST_REDIS_URL:-}" ]]; then
    command -v redis-server >/dev/null || [[ -x /usr/bin/redis-server ]] \
        || packages+=(redis-server)
fi

for wanted in "$@"; do
    command_name="${wanted%%:*}"
    package="${wanted#*:}"
    command -v "$command_name" >/dev/null || packages+=("$package")
done

if [[ ${#packages[@]} -eq 0 ]]; then
    echo "ensure-services: PostgreSQL and Redis binaries present"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "ensure-services: missing Debian packages: ${packages[*]}" >&2
    echo "ensure-services: run as root, or: sudo apt-get install -y ${packages[*]}" >&2
    exit 1
fi

echo "ensure-services: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_options=(-y -q -o DPkg::Lock::Timeout=300 --no-install-recommends)
apt-get update -q -o Acquire::Retries=3 </dev/null
apt-get install "${apt_options[@]}" "${packages[@]}" </dev/null
