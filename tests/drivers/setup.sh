#!/usr/bin/env bash
# Installs the third-party MySQL drivers used by the driver matrix test
# (tests/e2e/tests/drivers.rs). Idempotent: installs only what is missing or
# at another version, and does nothing when everything is in place.
#
# Run as root on Debian 12:   bash tests/drivers/setup.sh
#
# What it installs:
#   * Debian: php-cli php-mysql (mysqli and PDO on mysqlnd), and only if
#     absent: python3-venv, the mariadb client, nodejs/npm;
#   * a Python venv at $TARGET/drivers/venv with PyMySQL and
#     mysql-connector-python at pinned versions;
#   * mysql2 at its latest release and at the latest 3.23 patch, each in its
#     own directory $TARGET/drivers/mysql2-latest and $TARGET/drivers/mysql2-3.23,
#     from the package.json and package-lock.json under tests/drivers/node/.
# $TARGET is ${CARGO_TARGET_DIR:-<repo>/target}, as for cargo.
set -euo pipefail

PYMYSQL_VERSION=1.2.4
MYSQL_CONNECTOR_VERSION=26.10.0
# Must match the versions in tests/drivers/node/*/package.json.
MYSQL2_LATEST_VERSION=3.25.0
MYSQL2_323_VERSION=3.23.4

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-}"
if [ -z "$TARGET" ]; then
    TARGET="$REPO/target"
elif [ "${TARGET#/}" = "$TARGET" ]; then
    # A relative CARGO_TARGET_DIR is relative to the workspace, as in the
    # e2e harness (sluice_e2e::target_dir).
    TARGET="$REPO/$TARGET"
fi
DRIVERS="$TARGET/drivers"
VENV="$DRIVERS/venv"

log() { printf 'drivers/setup: %s\n' "$*"; }

APT_UPDATED=0
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        log "need root to install Debian packages: $*"
        exit 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# --- Debian packages -------------------------------------------------------

php_ready() {
    command -v php >/dev/null 2>&1 &&
        php -r 'exit(extension_loaded("mysqlnd") && extension_loaded("mysqli") && extension_loaded("pdo_mysql") ? 0 : 1);' \
            >/dev/null 2>&1
}

missing=()
php_ready || missing+=(php-cli php-mysql)
command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi
php_ready || { log "PHP with mysqli and pdo_mysql is still missing after installing php-cli php-mysql"; exit 1; }
log "php: $(php -r 'echo PHP_VERSION;') with mysqli and pdo_mysql (mysqlnd)"

mkdir -p "$DRIVERS"

# --- Python venv -----------------------------------------------------------

venv_ready() {
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" - "$PYMYSQL_VERSION" "$MYSQL_CONNECTOR_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
import pymysql, mysql.connector  # noqa: F401 (they must import)
sys.exit(0 if (version("PyMySQL"), version("mysql-connector-python")) == (sys.argv[1], sys.argv[2]) else 1)
EOF
}

if venv_ready; then
    log "venv $VENV: PyMySQL $PYMYSQL_VERSION, mysql-connector-python $MYSQL_CONNECTOR_VERSION already installed"
else
    if [ ! -x "$VENV/bin/pip" ]; then
        # Debian's own python3 when there is one (not whatever a version
        # manager puts first on PATH), so every machine gets the same.
        PYTHON=/usr/bin/python3
        [ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
        rm -rf "$VENV"
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            # Debian's python3 needs python3-venv (ensurepip) for venvs.
            rm -rf "$VENV"
            apt_install python3-venv
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    log "pip install PyMySQL==$PYMYSQL_VERSION mysql-connector-python==$MYSQL_CONNECTOR_VERSION into $VENV"
    "$VENV/bin/pip" install --disable-pip-version-check --no-input -q \
        "PyMySQL==$PYMYSQL_VERSION" "mysql-connector-python==$MYSQL_CONNECTOR_VERSION"
    venv_ready || { log "the venv at $VENV does not import the pinned drivers"; exit 1; }
fi

# --- mysql2 (Node) ---------------------------------------------------------

install_mysql2() {
    local name="$1" want="$2"
    local src="$HERE/node/$name" dir="$DRIVERS/$name"
    local have=""
    if [ -f "$dir/node_modules/mysql2/package.json" ] &&
        cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
        have="$(node -p 'require(process.argv[1]).version' "$dir/node_modules/mysql2/package.json" 2>/dev/null || true)"
    fi
    if [ "$have" = "$want" ]; then
        log "mysql2 $want already installed in $dir"
        return
    fi
    log "npm ci mysql2@$want in $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    have="$(node -p 'require(process.argv[1]).version' "$dir/node_modules/mysql2/package.json")"
    [ "$have" = "$want" ] || { log "$dir has mysql2 $have, wanted $want"; exit 1; }
}

install_mysql2 mysql2-latest "$MYSQL2_LATEST_VERSION"
install_mysql2 mysql2-3.23 "$MYSQL2_323_VERSION"

log "ready: $DRIVERS"
