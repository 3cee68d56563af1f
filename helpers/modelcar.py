"""ModelCar: a model packaged as an ordinary OCI container image.

KServe's modelcar sidecar runs ``sh -c "ln -sf /proc/$$/root/models /mnt/models
&& sleep infinity"``, so the image needs a shell and the model under /models.
Here the image is written with the standard library (tarfile, gzip, hashlib):
a busybox layer plus a /models layer, every timestamp and owner fixed, so the
same model always gives the same digest. skopeo pushes and pulls it.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .errors import WorkshopError

BUSYBOX = Path("/bin/busybox")
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
EPOCH = "1970-01-01T00:00:00Z"


class ModelCarError(WorkshopError):
    """The image is not a usable ModelCar."""


class RegistryAuthError(WorkshopError):
    """The registry refused the credentials."""


class ImageNotFoundError(WorkshopError):
    """No image with that reference in the registry."""


@dataclass(frozen=True)
class BuiltImage:
    layout: Path  # an OCI image layout folder
    tag: str
    digest: str  # sha256 of the manifest: what a registry reports for the image


# -- building ---------------------------------------------------------------
def _tar_entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0,
               linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, linkname
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _busybox_layer(tar: tarfile.TarFile) -> None:
    if not BUSYBOX.is_file():
        raise ModelCarError(f"{BUSYBOX} is missing (Debian package busybox-static); run: make setup")
    tar.addfile(_tar_entry("bin", tarfile.DIRTYPE, 0o755))
    data = BUSYBOX.read_bytes()
    tar.addfile(_tar_entry("bin/busybox", mode=0o755, size=len(data)), io.BytesIO(data))
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in sorted(set(applets) - {"busybox"}):
        tar.addfile(_tar_entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777, linkname="busybox"))


def _models_layer(tar: tarfile.TarFile, model_dir: Path) -> None:
    tar.addfile(_tar_entry("models", tarfile.DIRTYPE, 0o755))
    for path in sorted(model_dir.rglob("*")):
        name = "models/" + path.relative_to(model_dir).as_posix()
        if path.is_dir():
            tar.addfile(_tar_entry(name, tarfile.DIRTYPE, 0o755))
        else:
            data = path.read_bytes()
            tar.addfile(_tar_entry(name, size=len(data)), io.BytesIO(data))


def _layer(fill, *args) -> tuple[bytes, str]:
    """A gzipped, reproducible tar layer and the digest of its uncompressed tar."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        fill(tar, *args)
    plain = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="") as gz:
        gz.write(plain)
    return packed.getvalue(), "sha256:" + hashlib.sha256(plain).hexdigest()


def _write_blob(layout: Path, data: bytes, media_type: str) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def _json(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def build_modelcar(model_dir: str | Path, layout: str | Path, tag: str) -> BuiltImage:
    """Write a ModelCar OCI image layout for ``model_dir``; same model, same digest."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ModelCarError(f"{model_dir} has no config.json: not a model folder to package")
    return _build(Path(layout), tag, model_dir)


def build_shell_image(layout: str | Path, tag: str) -> BuiltImage:
    """The same image without /models: a container image, but not a ModelCar."""
    return _build(Path(layout), tag, None)


def _build(layout: Path, tag: str, model_dir: Path | None) -> BuiltImage:
    shutil.rmtree(layout, ignore_errors=True)
    layers, diff_ids = [], []
    fills = [(_busybox_layer, ())] + ([(_models_layer, (model_dir,))] if model_dir else [])
    for fill, args in fills:
        blob, diff_id = _layer(fill, *args)
        layers.append(_write_blob(layout, blob, LAYER_TYPE))
        diff_ids.append(diff_id)
    config = {
        "architecture": "amd64", "os": "linux", "created": EPOCH,
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"org.opencontainers.image.title": tag}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                "config": _write_blob(layout, _json(config), CONFIG_TYPE), "layers": layers}
    manifest_ref = _write_blob(layout, _json(manifest), MANIFEST_TYPE)
    index = {"schemaVersion": 2, "manifests": [{**manifest_ref, "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (layout / "index.json").write_bytes(_json(index))
    (layout / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    return BuiltImage(layout, tag, manifest_ref["digest"])


# -- registry transfers -----------------------------------------------------
def _skopeo(args: list[str], reference: str) -> str:
    if not shutil.which("skopeo"):
        raise ModelCarError("skopeo is missing (Debian package skopeo); run: make setup")
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=600)
    if done.returncode == 0:
        return done.stdout
    error = done.stderr.strip()
    lowered = error.lower()
    if "unauthorized" in lowered or "authentication required" in lowered:
        raise RegistryAuthError(f"the registry refused the credentials for {reference}. "
                                f"Check the username and password (skopeo said: {error[-300:]})")
    if "manifest unknown" in lowered or "name unknown" in lowered:
        raise ImageNotFoundError(f"no image {reference} in the registry: check the repository and tag "
                                 f"(skopeo said: {error[-300:]})")
    raise ModelCarError(f"skopeo failed for {reference}: {error[-600:]}")


def push(image: BuiltImage, reference: str, authfile: Path) -> str:
    """Push a built image to ``host:port/repo:tag``; returns the digest the registry stored."""
    digest_file = image.layout / "pushed.digest"
    _skopeo(["copy", "--quiet", "--dest-tls-verify=false", "--authfile", str(authfile),
             "--digestfile", str(digest_file), f"oci:{image.layout}:{image.tag}", f"docker://{reference}"],
            reference)
    return digest_file.read_text().strip()


def _verify_blobs(layout: Path, manifest: dict) -> None:
    for blob in [manifest["config"], *manifest["layers"]]:
        algorithm, expected = blob["digest"].split(":")
        actual = hashlib.sha256((layout / "blobs" / algorithm / expected).read_bytes()).hexdigest()
        if actual != expected:
            raise ModelCarError(f"blob {blob['digest']} does not match its content (got sha256:{actual})")


def pull_and_unpack(reference: str, dest: str | Path, authfile: Path | None) -> tuple[Path, str]:
    """Pull ``host:port/repo:tag``, verify every digest, unpack; returns (model folder, manifest digest)."""
    dest = Path(dest)
    layout = dest.with_name(dest.name + ".oci")
    shutil.rmtree(layout, ignore_errors=True)
    auth = ["--authfile", str(authfile)] if authfile else []
    _skopeo(["copy", "--quiet", "--src-tls-verify=false", *auth, f"docker://{reference}", f"oci:{layout}:pulled"],
            reference)
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest_bytes = (layout / "blobs" / "sha256" / manifest_digest.split(":")[1]).read_bytes()
    if "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() != manifest_digest:
        raise ModelCarError(f"the manifest of {reference} does not match its digest")
    manifest = json.loads(manifest_bytes)
    _verify_blobs(layout, manifest)
    rootfs = dest.with_name(dest.name + ".rootfs")
    shutil.rmtree(rootfs, ignore_errors=True)
    for layer in manifest["layers"]:
        with tarfile.open(layout / "blobs" / "sha256" / layer["digest"].split(":")[1], "r:gz") as tar:
            tar.extractall(rootfs, filter="data")
    if not (rootfs / "models" / "config.json").is_file():
        shutil.rmtree(rootfs, ignore_errors=True)
        raise ModelCarError(f"{reference} is not a ModelCar: the image has no /models folder with a model "
                            "(KServe mounts /models of the image at /mnt/models)")
    shutil.rmtree(dest, ignore_errors=True)
    (rootfs / "models").rename(dest)
    shutil.rmtree(rootfs, ignore_errors=True)
    shutil.rmtree(layout, ignore_errors=True)
    return dest, manifest_digest


def describe(image: BuiltImage) -> list[dict]:
    """The image's layers: what each holds, its size and digest."""
    index = json.loads((image.layout / "index.json").read_text())
    manifest = json.loads((image.layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    names = ["busybox: a shell for KServe's modelcar sidecar", "/models: the model"]
    return [{"layer": names[i] if i < len(names) else f"layer {i}", "compressed_mb": round(layer["size"] / 1e6, 2),
             "digest": layer["digest"][:19] + "…"} for i, layer in enumerate(manifest["layers"])]
