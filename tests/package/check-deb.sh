#!/usr/bin/env bash
# Builds the Debian package with `make deb` and checks it without
# installing it on this machine:
#   * dpkg-deb -c: the expected paths, modes and owners, nothing stray;
#   * dpkg-deb -I / control files: name, version, conffile, maintainer
#     scripts (syntax, no leftover #DEBHELPER#, set -e);
#   * the maintainer scripts run against stub commands: postinst creates
#     the sluice system user (adduser, or useradd without adduser), leaves
#     an existing one alone, and neither postinst, prerm nor postrm starts,
#     enables or restarts anything on a fresh install or a removal;
#   * dpkg -x into a scratch root: the packaged binary accepts the packaged
#     configuration with --check-config and refuses a broken one;
#   * the packaged unit is config/sluice.service with only the package's
#     paths, user and documentation changed;
#   * the man page renders without warnings, documents every flag of
#     `sluice --help`, and lists every key of docs/configuration.md with
#     the same default;
#   * a real `dpkg -i`, reinstall, remove and purge, as root, in a private
#     mount namespace whose /usr, /etc and /var are overlays over this
#     machine's (nothing reaches the real ones): the user is created, the
#     unit is installed but neither enabled nor started, the installed
#     binary validates the configuration as the sluice user, a local change
#     to the conffile survives a reinstall, purge removes /etc/sluice.
#     Skipped (and said so) where unshare or overlayfs is not available.
# Prints "package: N passed, M failed" last; exits non-zero on a failure.
#
# Usage: bash tests/package/check-deb.sh   (or: make test-package)
# SLUICE_DEB=path/to.deb checks that file instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
ok() {
    echo "ok: $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
# check DESCRIPTION COMMAND...: one check, passed if COMMAND succeeds.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
# quiet COMMAND...: runs COMMAND, showing its output only if it fails.
quiet() {
    local out
    out=$("$@" 2>&1) || {
        echo "$out"
        return 1
    }
}
finish() {
    echo "package: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# Runs inside the private mount namespace: overlays, then the real dpkg.
# Prints ok:/FAIL: lines, which the caller counts.
install_for_real() {
    local deb=$1 layers=$2
    for dir in usr etc var; do
        mkdir -p "$layers/$dir/upper" "$layers/$dir/work"
        mount -t overlay overlay \
            -o "lowerdir=/$dir,upperdir=$layers/$dir/upper,workdir=$layers/$dir/work" "/$dir"
    done
    local out
    if out=$(dpkg -i "$deb" 2>&1); then
        ok "dpkg -i installs"
    else
        fail "dpkg -i: $out"
        return
    fi
    local entry
    entry=$(getent passwd sluice || true)
    local uid shell
    uid=$(cut -d: -f3 <<<"$entry")
    shell=$(cut -d: -f7 <<<"$entry")
    check "postinst created the system user sluice ($entry)" \
        test -n "$entry" -a "${uid:-1000}" -lt 1000 -a "$shell" = /usr/sbin/nologin
    check "postinst created the group sluice" quiet getent group sluice
    check "unit installed" test -f /usr/lib/systemd/system/sluice.service
    check "unit not enabled" test ! -e /etc/systemd/system/multi-user.target.wants/sluice.service
    check "socket unit installed, not enabled" \
        test -f /usr/lib/systemd/system/sluice.socket -a ! -e /etc/systemd/system/sockets.target.wants/sluice.socket
    local running=""
    for exe in /proc/[0-9]*/exe; do
        [ "$(readlink "$exe" 2>/dev/null)" = /usr/bin/sluice ] && running="$running ${exe%/exe}"
    done
    check "nothing started${running:+:$running}" test -z "$running"
    if out=$(runuser -u sluice -- /usr/bin/sluice --config /etc/sluice/sluice.ini --check-config 2>&1); then
        ok "the sluice user can read and validate /etc/sluice/sluice.ini: $out"
    else
        fail "as the sluice user, --check-config: $out"
    fi
    echo "; changed on this host" >>/etc/sluice/sluice.ini
    if out=$(dpkg -i "$deb" 2>&1 </dev/null); then
        ok "dpkg -i again (upgrade path) succeeds"
    else
        fail "dpkg -i again: $out"
    fi
    check "a local change to the conffile survives" grep -qx '; changed on this host' /etc/sluice/sluice.ini
    check "dpkg --remove" quiet dpkg --remove sluice
    check "remove keeps the conffile" test -f /etc/sluice/sluice.ini
    check "remove deletes the binary" test ! -e /usr/bin/sluice
    check "dpkg --purge" quiet dpkg --purge sluice
    check "purge deletes /etc/sluice" test ! -e /etc/sluice
}

if [ "${1:-}" = --inside-namespace ]; then
    install_for_real "$2" "$3" >"$4" 2>&1
    exit 0
fi

version=$(cargo pkgid -p sluice)
version=${version##*#}
version=${version##*@}
arch=$(dpkg --print-architecture)
target=${CARGO_TARGET_DIR:-target}
deb=${SLUICE_DEB:-$target/debian/sluice_${version}_${arch}.deb}

if [ -z "${SLUICE_DEB:-}" ]; then
    rm -f "$deb"
    ${MAKE:-make} deb
fi
if [ ! -f "$deb" ]; then
    fail "make deb wrote $deb"
    finish
    exit 1
fi
ok "make deb wrote $deb ($(du -h "$deb" | cut -f1))"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# --- Contents -------------------------------------------------------------
dpkg-deb -c "$deb" >"$scratch/contents"
# "mode owner path" per entry, path without the leading "./"; owner 0/0
# (numeric ids, as cargo-deb writes them) reads as root/root.
awk '{ p = $6; sub(/^\.\//, "", p); o = ($2 == "0/0" ? "root/root" : $2); print $1, o, p }' "$scratch/contents" >"$scratch/entries"

expect_entry() { # MODE PATH
    grep -qxF -e "$1 root/root $2" "$scratch/entries"
}
check "usr/bin/sluice, executable, root-owned" expect_entry -rwxr-xr-x usr/bin/sluice
check "etc/sluice/sluice.ini" expect_entry -rw-r--r-- etc/sluice/sluice.ini
check "systemd unit" expect_entry -rw-r--r-- usr/lib/systemd/system/sluice.service
check "systemd socket unit" expect_entry -rw-r--r-- usr/lib/systemd/system/sluice.socket
check "man page, compressed" expect_entry -rw-r--r-- usr/share/man/man8/sluice.8.gz
for doc in copyright README.md configuration.md operations.md batching.md examples/grafana-dashboard.json; do
    check "usr/share/doc/sluice/$doc" expect_entry -rw-r--r-- "usr/share/doc/sluice/$doc"
done
stray=$(awk '$1 !~ /^d/ { print $3 }' "$scratch/entries" |
    grep -vE '^(usr/bin/sluice|etc/sluice/sluice\.ini|usr/lib/systemd/system/sluice\.(service|socket)|usr/share/man/man8/sluice\.8\.gz|usr/share/doc/sluice/.+)$' || true)
check "no file outside the expected paths${stray:+: $stray}" test -z "$stray"

# --- Control information --------------------------------------------------
dpkg-deb -I "$deb" >"$scratch/info"
check "Package: sluice" test "$(dpkg-deb -f "$deb" Package)" = sluice
check "Version: $version" test "$(dpkg-deb -f "$deb" Version)" = "$version"
check "Architecture: $arch" test "$(dpkg-deb -f "$deb" Architecture)" = "$arch"
check "Depends names libc6" grep -q '^ Depends:.*libc6' "$scratch/info"
for part in conffiles postinst prerm postrm; do
    check "dpkg-deb -I lists $part" grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$part( |\$)" "$scratch/info"
done
mkdir "$scratch/control"
dpkg-deb -e "$deb" "$scratch/control"
check "the one conffile is /etc/sluice/sluice.ini" \
    test "$(cat "$scratch/control/conffiles")" = /etc/sluice/sluice.ini

for script in postinst prerm postrm; do
    file=$scratch/control/$script
    check "$script: #!/bin/sh" test "$(head -n 1 "$file")" = "#!/bin/sh"
    check "$script: executable" test -x "$file"
    check "$script: sh -n" sh -n "$file"
    check "$script: bash -n" bash -n "$file"
    check "$script: set -e" grep -qx 'set -e' "$file"
    check "$script: #DEBHELPER# replaced" bash -c '! grep -q "#DEBHELPER#" "$1"' _ "$file"
    if command -v shellcheck >/dev/null 2>&1; then
        check "$script: shellcheck" shellcheck -s sh "$file"
    fi
done

# --- Maintainer scripts against stub commands ------------------------------
# Each stub logs its name and arguments; getent finds the user only after a
# stub created it. deb-systemd-helper answers "no" to its questions.
stubs=$scratch/stubs
mkdir "$stubs"
log=$scratch/calls
for name in adduser useradd systemctl deb-systemd-invoke deb-systemd-helper systemd-tmpfiles; do
    cat >"$stubs/$name" <<EOF
#!/bin/sh
echo "$name \$*" >>"$log"
case "$name \$1 \$2" in
    "adduser "*|"useradd "*) touch "$scratch/user-exists" ;;
    "deb-systemd-helper debian-installed"*|"deb-systemd-helper --quiet was-enabled"*) exit 1 ;;
esac
exit 0
EOF
done
cat >"$stubs/getent" <<EOF
#!/bin/sh
[ "\$1" = passwd ] && [ -e "$scratch/user-exists" ] && echo "sluice:x:999:999::/nonexistent:/usr/sbin/nologin"
[ "\$1" = passwd ] && [ -e "$scratch/user-exists" ]
EOF
chmod 755 "$stubs"/*

# run_script SCRIPT ARGS...: with the stubs first on PATH and /usr/sbin
# (the real adduser and useradd) off it.
run_script() {
    local script=$1
    shift
    PATH="$stubs:/usr/bin:/bin" sh "$scratch/control/$script" "$@" >>"$scratch/script-output" 2>&1
}
starts_nothing() {
    ! grep -E '^(systemctl (start|restart|enable|reload)|deb-systemd-invoke (start|restart)|deb-systemd-helper enable)' "$log"
}

: >"$log"
check "postinst configure (fresh install) exits 0" run_script postinst configure
check "postinst creates the system user with adduser --system" \
    grep -qE '^adduser --system .*--no-create-home .*sluice$' "$log"
check "postinst starts and enables nothing" starts_nothing
: >"$log"
check "postinst configure again (user exists) exits 0" run_script postinst configure "$version"
check "postinst leaves an existing user alone" bash -c '! grep -qE "^(adduser|useradd) " "$1"' _ "$log"
: >"$log"
rm -f "$scratch/user-exists" "$stubs/adduser"
check "postinst without adduser exits 0" run_script postinst configure
check "postinst falls back to useradd --system" \
    grep -qE '^useradd --system .*--shell /usr/sbin/nologin sluice$' "$log"
: >"$log"
check "prerm remove exits 0" run_script prerm remove
check "postrm remove exits 0" run_script postrm remove
check "postrm purge exits 0" run_script postrm purge
check "removal starts nothing" starts_nothing
# The socket unit holds the client port across restarts of the service: an
# upgrade must restart the service only; removal stops the socket too.
check "upgrade restarts the service, never the socket" \
    bash -c 'grep -q "try-restart sluice.service" "$1" && ! grep -E "restart.*sluice\.socket" "$1"' \
    _ "$scratch/control/postinst"
check "prerm stops the units only on removal, not on upgrade" \
    bash -c 'grep -B1 "stop sluice" "$1" | head -n 1 | grep -q "\"\$1\" = remove"' \
    _ "$scratch/control/prerm"
check "prerm remove stops both units (where systemd runs)" \
    grep -qE 'stop sluice\.service sluice\.socket' "$scratch/control/prerm"

# --- The packaged files ---------------------------------------------------
root=$scratch/root
dpkg -x "$deb" "$root"
sluice=$root/usr/bin/sluice
ini=$root/etc/sluice/sluice.ini
check "packaged sluice.ini is config/sluice.ini" cmp -s "$ini" config/sluice.ini
check "packaged sluice.socket is config/sluice.socket" \
    cmp -s "$root/usr/lib/systemd/system/sluice.socket" config/sluice.socket
check "sluice --version names $version" \
    bash -c '"$1" --version | grep -qx "sluice $2"' _ "$sluice" "$version"
if out=$(env -i PATH=/usr/bin:/bin "$sluice" --config "$ini" --check-config 2>&1) &&
    [ "$out" = "configuration is valid" ]; then
    ok "sluice --config /etc/sluice/sluice.ini --check-config: $out"
else
    fail "sluice --check-config on the packaged configuration: $out"
fi
sed 's/^max_connections = .*/max_connections = 0/' "$ini" >"$scratch/broken.ini"
if out=$(env -i PATH=/usr/bin:/bin "$sluice" --config "$scratch/broken.ini" --check-config 2>&1); then
    fail "--check-config accepted max_connections = 0"
else
    check "--check-config refuses max_connections = 0, naming the key" \
        grep -q 'max_connections' <<<"$out"
fi

# The unit: config/sluice.service but for the package's paths and user.
unit=$root/usr/lib/systemd/system/sluice.service
grep -v '^#' config/sluice.service |
    sed -e 's|^ExecStart=/usr/local/bin/sluice |ExecStart=/usr/bin/sluice |' \
        -e 's|^Documentation=|Documentation=man:sluice(8) |' \
        -e 's|^DynamicUser=yes$|User=sluice\nGroup=sluice|' >"$scratch/unit.expected"
grep -v '^#' "$unit" >"$scratch/unit.packaged"
check "packaged unit = config/sluice.service with package paths and user" \
    diff -u "$scratch/unit.expected" "$scratch/unit.packaged"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
read -r exec_bin _ exec_config _ <<<"$exec_start"
check "unit runs the packaged binary ($exec_bin)" test -x "$root$exec_bin"
check "unit reads the packaged configuration ($exec_config)" test -f "$root$exec_config"
check "unit runs as the user postinst creates" grep -qx 'User=sluice' "$unit"
doc=$(sed -n 's|^Documentation=.*file://\([^ ]*\).*|\1|p' "$unit")
check "unit's documentation ($doc) is packaged" test -f "$root$doc"
if command -v systemd-analyze >/dev/null 2>&1; then
    # Unknown sections or keys and bad values are warnings on its output.
    # The packaged binary is not installed here: point ExecStart at the
    # extracted one.
    sed "s|^ExecStart=$exec_bin |ExecStart=$root$exec_bin |" "$unit" >"$scratch/sluice.service"
    if out=$(systemd-analyze verify --man=no "$scratch/sluice.service" 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze verify: no warnings"
    else
        fail "systemd-analyze verify: $out"
    fi
    cp "$root/usr/lib/systemd/system/sluice.socket" "$scratch/sluice.socket"
    if out=$(systemd-analyze verify --man=no "$scratch/sluice.socket" 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze verify sluice.socket (with its service): no warnings"
    else
        fail "systemd-analyze verify sluice.socket: $out"
    fi
fi

# The man page.
zcat "$root/usr/share/man/man8/sluice.8.gz" >"$scratch/sluice.8"
check "man page = packaging/debian/sluice.8" cmp -s "$scratch/sluice.8" packaging/debian/sluice.8
if command -v groff >/dev/null 2>&1; then
    check "man page renders without warnings" \
        bash -c 'out=$(groff -man -ww -z "$1" 2>&1) && [ -z "$out" ]' _ "$scratch/sluice.8"
fi
# Plain text of the roff source: escaped hyphens as hyphens.
sed 's/\\-/-/g' "$scratch/sluice.8" >"$scratch/sluice.8.txt"
"$sluice" --help >"$scratch/help"
flags=$(grep -oE '(^|[ ,])--?[A-Za-z][a-z-]*' "$scratch/help" | tr -d ' ,' | sort -u)
check "--help shows flags" test -n "$flags"
for flag in $flags; do
    check "man page documents $flag" grep -qE "^\.[A-Z]+ .*$flag( |\$|\")" "$scratch/sluice.8.txt"
done
# "section key=default" from docs/configuration.md and from the man page.
awk '
    /^## `\[[a-z]+\]`$/ { section = $2; gsub(/[`\[\]]/, "", section) }
    section != "" && /^\| `[a-z_]+` \|/ {
        split($0, cell, "|")
        key = cell[2]; value = cell[3]
        gsub(/[ `]/, "", key); gsub(/^ +| +$/, "", value); gsub(/`/, "", value)
        if (value == "(empty)") value = ""
        print section, key "=" value
    }' docs/configuration.md | sort >"$scratch/keys.docs"
awk '
    /^\.SS \[[a-z]+\]$/ { section = $2; gsub(/[\[\]]/, "", section); next }
    /^\.S[HS] / { section = "" }
    section != "" && /^\.B [a-z_]+ =/ {
        line = $0; sub(/^\.B /, "", line)
        key = line; sub(/ =.*/, "", key)
        value = line; sub(/^[a-z_]+ =[ ]?/, "", value)
        print section, key "=" value
    }' "$scratch/sluice.8.txt" | sort >"$scratch/keys.man"
check "docs/configuration.md lists keys" test "$(wc -l <"$scratch/keys.docs")" -ge 25
check "man page keys and defaults = docs/configuration.md" \
    diff -u "$scratch/keys.docs" "$scratch/keys.man"

# --- A real installation, in a private mount namespace --------------------
layers=$scratch/layers
mkdir -p "$layers"
if [ "$(id -u)" -eq 0 ] && unshare -m --propagation private \
    sh -c "mount -t tmpfs none '$layers' && umount '$layers'" 2>/dev/null; then
    unshare -m --propagation private \
        bash "$0" --inside-namespace "$(realpath "$deb")" "$layers" "$scratch/install.log" ||
        true
    cat "$scratch/install.log"
    passed=$((passed + $(grep -c '^ok: ' "$scratch/install.log" || true)))
    failed=$((failed + $(grep -c '^FAIL: ' "$scratch/install.log" || true)))
    check "the real installation ran its checks" grep -q '^ok: dpkg --purge' "$scratch/install.log"
else
    echo "skip: real installation (needs root and unshare -m with overlayfs)"
fi

finish
