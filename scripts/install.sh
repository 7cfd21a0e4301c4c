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
