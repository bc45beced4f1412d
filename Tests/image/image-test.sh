#!/usr/bin/env bash
# make image-test: prove the OCI archive holds everything berth needs, with no container engine.
#  1. the archive is valid OCI (every digest and size, media types, diff_ids: oci_image.py check;
#     and skopeo inspect oci-archive: where skopeo is installed);
#  2. building it again from the same binary gives the same digests (deterministic);
#  3. its layer, unpacked into a folder, runs under chroot as uid 65532 with nothing from the host:
#     berth --version (equal to the chart's appVersion), berth mutate on a fixture, and
#     berth serve --provisioner=false answering /healthz over TLS.
# Needs root (chroot, mount namespaces). Usage: image-test.sh ARCHIVE BINARY VERSION
set -euo pipefail
archive=$1 binary=$2 version=$3
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top"
work=$(mktemp -d /tmp/berth-image-test.XXXXXX)
server=""
cleanup() {
  if [[ -n $server ]]; then pkill -KILL -P "$(pgrep -P "$server" -x unshare)" 2>/dev/null; wait "$server" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { echo "image-test: $*"; }
die() { echo "image-test: FAIL: $*" >&2; exit 1; }

step "checking $archive"
python3 Tests/image/oci_image.py check "$archive" --unpack "$work/rootfs" > "$work/check.json" || die "the archive is not a valid OCI image layout"
cat "$work/check.json"
if command -v skopeo >/dev/null; then
  skopeo inspect "oci-archive:$archive" > "$work/skopeo.json" || die "skopeo inspect oci-archive:$archive failed"
  skopeo inspect --config "oci-archive:$archive" > "$work/skopeo-config.json" || die "skopeo inspect --config failed"
  python3 - "$work/skopeo.json" "$work/skopeo-config.json" "$work/check.json" <<'PY' || die "skopeo sees another image"
import json, sys
inspect, config, ours = (json.load(open(p)) for p in sys.argv[1:])
assert inspect["Layers"] == ours["layers"], (inspect["Layers"], ours["layers"])
assert inspect["Os"] == "linux" and inspect["Architecture"] == "amd64", inspect
assert config["config"]["User"] == "65532:65532", config["config"]
print("image-test: skopeo inspect agrees:", inspect["Digest"], inspect["Layers"])
PY
else
  step "skopeo is not installed: the schema check above stands alone"
fi

step "building again from the same binary"
python3 Tests/image/oci_image.py build --binary "$binary" --version "$version" --out "$work/again.oci.tar" >/dev/null
python3 Tests/image/oci_image.py check "$work/again.oci.tar" > "$work/again.json"
cmp -s "$work/check.json" "$work/again.json" || die "two builds differ: $(cat "$work/check.json") vs $(cat "$work/again.json")"
cmp -s "$archive" "$work/again.oci.tar" || die "two builds give different archives"
step "same layer and manifest digests, byte-identical archive"

root=$work/rootfs
[[ $(stat -c %u "$root/home/nonroot") == 65532 ]] || die "/home/nonroot is not owned by 65532"
# Inside a mount namespace of its own (gone with the process), the chroot gets what a container
# runtime gives every container: /proc (Swift reads its arguments from /proc/self/cmdline) and the
# standard character devices. Nothing else of the host is visible.
run() {
  unshare --mount --fork -- sh -c '
    root=$1; shift
    mount -t proc proc "$root/proc"
    for device in null zero random urandom; do
      : > "$root/dev/$device" && mount --bind "/dev/$device" "$root/dev/$device"
    done
    exec chroot --userspec=65532:65532 "$root" /usr/local/bin/berth "$@"
  ' sh "$root" "$@"
}

step "chroot: berth --version"
got=$(run --version) || die "berth --version failed inside the image"
chart=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/berth/Chart.yaml)
[[ $got == "$version" ]] || die "berth --version says $got, the image is tagged $version"
[[ $got == "$chart" ]] || die "berth --version says $got, the chart's appVersion is $chart"
echo "  $got (= chart appVersion)"

step "chroot: berth mutate -f z2jh-gpu-notebook.yaml -o patch"
install -D -m 0644 Tests/Fixtures/manifests/z2jh-gpu-notebook.yaml "$root/tmp/pod.yaml"
patch=$(run mutate -f /tmp/pod.yaml -o patch) || die "berth mutate failed inside the image"
grep -q '"nvidia.com/gpu.present"' <<<"$patch" || die "berth mutate inside the image gave no GPU affinity: $patch"
echo "  $(head -c 120 <<<"$patch")..."

step "chroot: berth serve --provisioner=false, then GET /healthz over TLS"
mkdir -p "$work/pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$work/pki/tls.key" -out "$work/pki/tls.crt" 2>/dev/null
install -D -m 0644 "$work/pki/tls.crt" "$root/tmp/tls/tls.crt"
install -D -m 0644 "$work/pki/tls.key" "$root/tmp/tls/tls.key"
chown -R 65532:65532 "$root/tmp/tls"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
metrics=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run serve --provisioner=false --tls-cert-file /tmp/tls/tls.crt --tls-private-key-file /tmp/tls/tls.key \
  --bind-address 127.0.0.1 --port "$port" --metrics-port "$metrics" > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 200); do
  if curl -sf --cacert "$work/pki/tls.crt" "https://localhost:$port/healthz" > "$work/healthz" 2>/dev/null; then break; fi
  kill -0 "$server" 2>/dev/null || die "berth serve exited inside the image: $(cat "$work/serve.log")"
  sleep 0.05
done
[[ -s $work/healthz ]] || die "no /healthz answer over TLS within 10 s: $(tail -5 "$work/serve.log")"
echo "  https://localhost:$port/healthz: $(cat "$work/healthz")"
# $server is the subshell running unshare, whose child is berth (sh and chroot exec'd into it):
# SIGTERM goes to berth itself, and the exit status comes back up through unshare.
berth_pid=$(pgrep -P "$(pgrep -P "$server" -x unshare)" -x berth) || die "no berth process under the server's unshare"
kill -TERM "$berth_pid"
wait "$server" || die "berth serve did not exit 0 on SIGTERM: $(tail -5 "$work/serve.log")"
server=""
step "passed"
