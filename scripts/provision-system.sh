#!/usr/bin/env bash
# The Debian packages the stack and the tests need (PostgreSQL, Redis, Java and Maven for Kafka,
# a C/C++ toolchain and Go for native builds and kustomize, promtool): installs what is missing.
# Used by both `make setup` (so `make run` works on a bare machine) and .ci/run.
# PROVISION_SIMULATE=1: decide as on a bare machine but only ask apt to simulate the install
# (`apt-get install -s`: resolves the packages against the index, changes nothing, needs no root);
# tests/deploy/test_provisioning.py runs it so, with nothing on PATH. PROVISION_PG_INITDB: where
# PostgreSQL's initdb is looked for (a glob).
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
SIMULATE="${PROVISION_SIMULATE:-0}"
missing=()
# shellcheck disable=SC2086  # the glob is meant to expand
ls ${PROVISION_PG_INITDB:-/usr/lib/postgresql/*/bin/initdb} >/dev/null 2>&1 || missing+=(postgresql)
# pg_partman keeps analytics' day partitions of usage facts (create ahead, drop past retention)
ls /usr/share/postgresql/15/extension/pg_partman.control >/dev/null 2>&1 || missing+=(postgresql-15-partman)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v g++ >/dev/null 2>&1 || missing+=(build-essential)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
# promtool checks the Grafana dashboard's PromQL (the package's service is not started)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# the web console's browser tests drive Debian's Chromium through Playwright (its own download is unreachable)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    if [ "$SIMULATE" = 1 ]; then
        apt-get install -s -y --no-install-recommends "${missing[@]}"
        exit 0
    fi
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "system packages: all present"
fi
