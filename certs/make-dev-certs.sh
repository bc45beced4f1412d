#!/usr/bin/env bash
# Development certificates for `berth serve`: a throwaway CA and a serving certificate signed by
# it, for the in-cluster Service name and for localhost. Private keys are mode 0600 and never
# committed (.gitignore). Idempotent: existing files are kept; `make certs-clean` starts over.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
cd "$dir"
umask 077
if [[ -s ca.crt && -s ca.key && -s tls.crt && -s tls.key ]]; then
  echo "certs/: development certificates already present"
  exit 0
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=berth-dev-ca" -keyout ca.key -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=berth.berth-system.svc" \
  -keyout tls.key -out tls.csr 2>/dev/null
cat > tls.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:berth.berth-system.svc,DNS:berth.berth-system.svc.cluster.local,DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -extfile tls.ext -out tls.crt 2>/dev/null
rm -f tls.csr tls.ext ca.srl
chmod 600 ca.key tls.key
chmod 644 ca.crt tls.crt
echo "certs/: wrote ca.crt, ca.key, tls.crt, tls.key (SANs berth.berth-system.svc, berth.berth-system.svc.cluster.local, localhost, 127.0.0.1)"
