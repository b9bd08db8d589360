# shellcheck shell=bash
# moto[server] in a virtual environment of its own version, for the scripts
# that need an S3/SQS emulator (test.sh, benches/harness/*.sh). Sourced:
#
#     source scripts/moto.sh
#     moto_install 5.2.5        # sets MOTO_PY, the venv's interpreter
#
# The venv is ${CWL_MOTO_VENV:-${XDG_CACHE_HOME:-~/.cache}/cwl-copy/moto-VERSION},
# made with --system-site-packages so that dependencies already installed
# are reused; runs pinned to different versions never reinstall each
# other's moto. The caller defines die MESSAGE.

MOTO_PY=

# moto_install VERSION: creates the venv and installs moto[server]==VERSION
# in it unless it is there; sets MOTO_PY (the real interpreter, not a shim,
# so that $! of a server started with it is the server's pid).
moto_install() {
    local version=$1 python=${PYTHON:-python3}
    local venv=${CWL_MOTO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cwl-copy/moto-$version}
    _moto_version() {
        # Importing moto.server checks the [server] extras (flask, ...) too.
        "$venv/bin/python" -c 'import importlib.metadata as m, moto.server
print(m.version("moto"))' 2>/dev/null || true
    }
    if [[ $(_moto_version) != "$version" ]]; then
        echo "installing moto[server]==$version into $venv"
        "$python" -m venv --clear --system-site-packages "$venv" ||
            die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --no-input "moto[server]==$version"
        [[ $(_moto_version) == "$version" ]] ||
            die "moto[server]==$version did not import after pip install"
    fi
    MOTO_PY=$("$venv/bin/python" -c 'import sys; print(sys.executable)')
}
