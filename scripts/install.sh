# Sourced by scripts/serve and scripts/test: install what they need, and only
# when it changed, so that the usual run starts at once.

# venv_with EXTRAS: .venv with this project and its comma-separated EXTRAS
# installed; redone when pyproject.toml changes or an extra is missing.
venv_with() {
    local venv=.venv wanted=$1 stamp=.venv/.wsstar-installed
    local digest
    digest=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ -x "$venv/bin/python" ] && [ -f "$stamp" ]; then
        local have_digest have_extras missing="" extra
        read -r have_digest have_extras <"$stamp" || true
        for extra in ${wanted//,/ }; do
            case ",$have_extras," in *",$extra,"*) ;; *) missing=yes ;; esac
        done
        if [ "$have_digest" = "$digest" ] && [ -z "$missing" ]; then
            return 0
        fi
        wanted="$wanted,$have_extras"
    fi
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    # pip's and setuptools' notices go to a log, shown only if the install fails.
    if ! {
        "$venv/bin/python" -m pip install --quiet --upgrade pip &&
            "$venv/bin/python" -m pip install --quiet -e ".[${wanted%,}]"
    } >"$venv/install.log" 2>&1; then
        cat "$venv/install.log" >&2
        return 1
    fi
    echo "$digest ${wanted%,}" >"$stamp"
}

# npm_ci DIR: npm ci in DIR unless node_modules already matches its lock file.
npm_ci() {
    local dir=$1 stamp=$1/node_modules/.wsstar-lock digest
    digest=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
        return 0
    fi
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$digest" >"$stamp"
}

# redis_server: the redis-server binary the cluster tests run (each test
# starts its own on a free loopback port and stops it). Installed from
# Debian's package when missing and run as root; anyone else is told how.
redis_server() {
    command -v "${WSSTAR_REDIS_SERVER:-redis-server}" >/dev/null && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "redis-server is missing; the cluster tests need it. Install it" \
            "(sudo apt-get install redis-server), or point WSSTAR_REDIS_SERVER" \
            "at a redis-server binary of your own." >&2
        return 1
    fi
    echo "== installing Debian's redis-server for the cluster tests"
    if ! {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server ||
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; }
    } >.venv/apt.log 2>&1; then
        cat .venv/apt.log >&2
        return 1
    fi
}
