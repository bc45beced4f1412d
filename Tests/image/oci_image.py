#!/usr/bin/env python3
"""Assemble Berth's OCI image without a container engine, and check one.

    oci_image.py build --binary .build/.../berth --version 0.1.0 --out .build/image/berth-0.1.0.oci.tar
    oci_image.py check .build/image/berth-0.1.0.oci.tar [--unpack DIR]

The image is one layer: the binary at /usr/local/bin/berth, exactly the shared libraries it
loads (read from the binary with ldd, at the paths the loader will look for them), the CA bundle,
/etc/passwd and /etc/group with the non-root user 65532 ("nonroot"), /tmp and the user's home.
The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) that also carries
Docker's manifest.json, so `docker load`, `podman load` and `skopeo copy oci-archive:...` all
take it. Deterministic: entries sorted, owners and times fixed (the commit's time, or
SOURCE_DATE_EPOCH), gzip without a name or time, so the same commit gives the same digests.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

USER_ID = 65532
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
MEDIA = {
    "index": "application/vnd.oci.image.index.v1+json",
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
}


def fail(message: str) -> None:
    print(f"oci_image: {message}", file=sys.stderr)
    sys.exit(1)


def shared_libraries(binary: str) -> list[str]:
    """The absolute paths ldd resolves for the binary, the dynamic loader included."""
    result = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"ldd {binary}: {result.stderr.strip() or result.stdout.strip()}")
    paths = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            fail(f"{binary} needs a library this machine lacks: {line}")
        match = re.match(r"^\S+ => (/\S+) \(0x[0-9a-f]+\)$", line) or re.match(r"^(/\S+) \(0x[0-9a-f]+\)$", line)
        if match:
            paths.append(match.group(1))
        elif not line.startswith("linux-vdso") and line:
            fail(f"ldd {binary}: a line not understood: {line!r}")
    if not any("ld-linux" in p or "/ld-" in p for p in paths):
        fail(f"ldd {binary}: no dynamic loader listed (a static binary needs no libraries; this builder expects a dynamic one)")
    return sorted(set(paths))


class Layer:
    """A tar written in a fixed order with fixed owners and times."""

    def __init__(self, mtime: int):
        self.mtime = mtime
        self.entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}

    def _info(self, path: str, kind: bytes, mode: int, uid: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type = kind
        info.mode = mode
        info.uid = info.gid = uid
        info.uname = info.gname = ""
        info.mtime = self.mtime
        return info

    def directory(self, path: str, mode: int = 0o755, uid: int = 0) -> None:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in self.entries:
                self.entries[parent] = (self._info(parent, tarfile.DIRTYPE, 0o755), None)
        self.entries[path.strip("/")] = (self._info(path, tarfile.DIRTYPE, mode, uid), None)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        parent = os.path.dirname(path.strip("/"))
        if parent and parent not in self.entries:
            self.directory(parent)
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.entries[path.strip("/")] = (info, data)

    def tar(self) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name in sorted(self.entries):
                info, data = self.entries[name]
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return out.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as stream:
        stream.write(data)
    return out.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def source_epoch() -> int:
    if "SOURCE_DATE_EPOCH" in os.environ:
        return int(os.environ["SOURCE_DATE_EPOCH"])
    result = subprocess.run(["git", "log", "-1", "--format=%ct"], capture_output=True, text=True)
    return int(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip() else 0


def revision() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def build(args: argparse.Namespace) -> None:
    epoch = source_epoch()
    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    layer = Layer(epoch)
    for path in ("/etc/ssl/certs", "/usr/local/bin", "/usr/bin", "/bin", "/proc", "/sys", "/dev"):
        layer.directory(path)  # /proc, /sys, /dev: mount points the runtime fills
    layer.directory("/tmp", 0o1777)
    layer.directory("/home/nonroot", 0o750, USER_ID)
    with open(args.binary, "rb") as f:
        layer.file("/usr/local/bin/berth", f.read(), 0o755)
    libraries = shared_libraries(args.binary)
    for path in libraries:
        with open(os.path.realpath(path), "rb") as f:
            layer.file(path, f.read(), 0o755)
    with open(CA_BUNDLE, "rb") as f:
        layer.file(CA_BUNDLE, f.read())
    layer.file("/etc/passwd", f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{USER_ID}:{USER_ID}:nonroot:/home/nonroot:/sbin/nologin\n".encode())
    layer.file("/etc/group", f"root:x:0:\nnonroot:x:{USER_ID}:\n".encode())
    layer.file("/etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    layer.file("/etc/hosts", b"127.0.0.1 localhost\n::1 localhost\n")

    tar = layer.tar()
    blob = gzip_bytes(tar)
    labels = {
        "org.opencontainers.image.title": "berth",
        "org.opencontainers.image.description": "Kubernetes admission webhook and GPU node provisioner for notebooks",
        "org.opencontainers.image.version": args.version,
        "org.opencontainers.image.revision": revision(),
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.licenses": "Apache-2.0",
    }
    config = canonical({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{USER_ID}:{USER_ID}",
            "Entrypoint": ["/usr/local/bin/berth"],
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", f"SSL_CERT_FILE={CA_BUNDLE}"],
            "WorkingDir": "/",
            "ExposedPorts": {"8443/tcp": {}, "8080/tcp": {}},
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [digest(tar)]},
        "history": [{"created": created, "created_by": "make image (Tests/image/oci_image.py): berth and the libraries ldd lists"}],
    })
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": MEDIA["manifest"],
        "config": {"mediaType": MEDIA["config"], "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": MEDIA["layer"], "digest": digest(blob), "size": len(blob)}],
        "annotations": labels,
    })
    name = f"berth:{args.version}"
    index = canonical({
        "schemaVersion": 2,
        "mediaType": MEDIA["index"],
        "manifests": [{
            "mediaType": MEDIA["manifest"], "digest": digest(manifest), "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": args.version, "io.containerd.image.name": f"docker.io/library/{name}"},
        }],
    })
    blob_path = lambda data: "blobs/sha256/" + hashlib.sha256(data).hexdigest()
    docker_manifest = canonical([{"Config": blob_path(config), "RepoTags": [name], "Layers": [blob_path(blob)]}])

    archive = Layer(epoch)
    archive.file("oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))
    archive.file("index.json", index)
    archive.file("manifest.json", docker_manifest)
    for data in (config, manifest, blob):
        archive.file(blob_path(data), data)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    temporary = args.out + ".partial"
    with open(temporary, "wb") as f:
        f.write(archive.tar())
    os.replace(temporary, args.out)
    print(f"{args.out}: {name}, layer {digest(blob)} ({len(blob) / 1e6:.1f} MB, {len(libraries)} shared libraries), manifest {digest(manifest)}")


def check(args: argparse.Namespace) -> None:
    """Read the archive as a registry client would: every descriptor's digest and size match its
    blob, the media types and required fields are the OCI ones, the config names the layer's
    uncompressed digest. With --unpack, the layer's files are written into DIR."""
    with tarfile.open(args.archive) as tar:
        members = {m.name: m for m in tar.getmembers()}

        def read(name: str) -> bytes:
            if name not in members:
                fail(f"{args.archive}: {name} is missing")
            return tar.extractfile(members[name]).read()

        def blob(descriptor: dict, media: str, where: str) -> bytes:
            for key, kind in (("mediaType", str), ("digest", str), ("size", int)):
                if not isinstance(descriptor.get(key), kind):
                    fail(f"{args.archive}: {where}.{key} is missing or not a {kind.__name__}")
            if descriptor["mediaType"] != media:
                fail(f"{args.archive}: {where}.mediaType is {descriptor['mediaType']!r}, expected {media!r}")
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", descriptor["digest"]):
                fail(f"{args.archive}: {where}.digest {descriptor['digest']!r} is not a sha256 digest")
            data = read("blobs/sha256/" + descriptor["digest"].split(":")[1])
            if digest(data) != descriptor["digest"] or len(data) != descriptor["size"]:
                fail(f"{args.archive}: {where}: the blob does not match its digest or size")
            return data

        if json.loads(read("oci-layout")) != {"imageLayoutVersion": "1.0.0"}:
            fail(f"{args.archive}: oci-layout is not imageLayoutVersion 1.0.0")
        index = json.loads(read("index.json"))
        if index.get("schemaVersion") != 2 or not index.get("manifests"):
            fail(f"{args.archive}: index.json has no schemaVersion 2 or no manifests")
        manifest = json.loads(blob(index["manifests"][0], MEDIA["manifest"], "index.manifests[0]"))
        if manifest.get("schemaVersion") != 2:
            fail(f"{args.archive}: the manifest's schemaVersion is not 2")
        config = json.loads(blob(manifest["config"], MEDIA["config"], "manifest.config"))
        for key in ("architecture", "os", "rootfs"):
            if key not in config:
                fail(f"{args.archive}: the config has no {key}")
        layers = [blob(layer, MEDIA["layer"], f"manifest.layers[{i}]") for i, layer in enumerate(manifest["layers"])]
        diff_ids = [digest(gzip.decompress(layer)) for layer in layers]
        if config["rootfs"].get("diff_ids") != diff_ids:
            fail(f"{args.archive}: the config's rootfs.diff_ids do not match the layers")
        docker = json.loads(read("manifest.json"))
        if docker[0]["Config"] != "blobs/sha256/" + manifest["config"]["digest"].split(":")[1]:
            fail(f"{args.archive}: manifest.json names another config than index.json")
        if args.unpack:
            os.makedirs(args.unpack, exist_ok=True)
            for layer in layers:
                with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as files:
                    files.extractall(args.unpack)  # our own layer: owners and modes kept
        print(json.dumps({"layers": [l["digest"] for l in manifest["layers"]], "manifest": index["manifests"][0]["digest"],
                          "user": config["config"].get("User"), "entrypoint": config["config"].get("Entrypoint")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="write the OCI archive")
    b.add_argument("--binary", required=True)
    b.add_argument("--version", required=True)
    b.add_argument("--out", required=True)
    c = commands.add_parser("check", help="verify an OCI archive (digests, sizes, media types), optionally unpack its layers")
    c.add_argument("archive")
    c.add_argument("--unpack")
    args = parser.parse_args()
    build(args) if args.command == "build" else check(args)


if __name__ == "__main__":
    main()
