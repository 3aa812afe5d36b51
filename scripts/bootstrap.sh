#!/usr/bin/env bash
# Sets up everything `make demo` and `make test` need on a fresh Debian 12 / Raspberry Pi OS machine:
# the missing apt packages, then a venv in $VENV with the project installed (editable, with test extras).
# Idempotent: each step checks before it acts, so a second run is quick.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# Debian packages the code and the test suite use at run time.
# mosquitto: the tests start their own broker on a free loopback port (never the system one).
# pcscd + vsmartcard-vpcd: the PC/SC stack with the virtual reader our virtual cards plug into.
# libpcsclite-dev + swig: build pyscard where no wheel exists (e.g. some Pi OS releases).
# libzbar0: the QR decoder the printer-preview tests read codes back with.
# espeak-ng + alsa-utils (aplay): spoken prompts. fonts-noto-cjk: Chinese glyphs for tickets
# and the kiosk screens. xvfb + xauth + libgl1-mesa-dri + libmtdev1: the Kivy window in the UI
# tests and `make demo HEADLESS=1` (Mesa's software renderer under Xvfb).
APT_PACKAGES=(python3 python3-venv python3-dev tzdata mosquitto pcscd vsmartcard-vpcd
    libpcsclite-dev swig libzbar0 espeak-ng alsa-utils fonts-noto-cjk
    xvfb xauth libgl1-mesa-dri libmtdev1)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A python3 that already has a working venv module (e.g. pyenv's) makes python3-venv/-dev optional.
if "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    filtered=()
    for pkg in "${missing[@]}"; do
        case "$pkg" in python3|python3-venv|python3-dev) ;; *) filtered+=("$pkg") ;; esac
    done
    missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: installing apt packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    touch "$stamp"
fi
# the kiosk's font faces, prepared once here as an install step would (kiosk/ui/font_cache.py);
# a no-op once done. Not fatal: the app uses the plain face and prepares it in the background.
"$VENV/bin/python" -m kiosk.ui.font_cache >/dev/null || echo "bootstrap: font faces not prepared"
