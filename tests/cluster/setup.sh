#!/usr/bin/env bash
# Installs what the Galera cluster tests (tests/e2e/tests/cluster_galera.rs,
# `make test-cluster`) need, only where it is missing:
#   * galera-4: the wsrep provider /usr/lib/galera/libgalera_smm.so;
#   * rsync: the state transfer method the joining nodes use;
#   * iproute2 (ss) or lsof: wsrep_sst_rsync checks its rsync daemon with one;
#   * the OS user mysql, which the nodes run as (rsync SST fails as root).
# The MariaDB server itself (mariadbd, mariadb-install-db, wsrep_sst_rsync)
# comes from mariadb-server, which the rest of the tests need already.
#
# Run as root on Debian 12:   bash tests/cluster/setup.sh
set -euo pipefail

log() { printf 'cluster/setup: %s\n' "$*"; }

missing=()
[ -e /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
if ! command -v ss >/dev/null 2>&1 && ! command -v lsof >/dev/null 2>&1; then
    missing+=(iproute2)
fi
command -v wsrep_sst_rsync >/dev/null 2>&1 || missing+=(mariadb-server)

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! id mysql >/dev/null 2>&1; then
    log "creating the system user mysql"
    useradd --system --no-create-home --shell /usr/sbin/nologin mysql
fi
log "ready: $(dpkg-query -W -f='galera-4 ${Version}' galera-4 2>/dev/null || echo 'galera-4 present')"
