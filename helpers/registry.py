"""Where ModelCars are pushed: a local OCI registry, or the registry a cluster pulls from.

The local registry (the CNCF distribution registry with htpasswd auth) plays the
part of quay.io on the local platform; its credentials are generated on first
start and stored, readable only by you, in the state folder: never in git, never
in a notebook output. On a cluster platform ModelCars go to ``MAAS_CLUSTER_REGISTRY``
(``cluster_registry``) with a login read from a file or the environment, never
from a command line; the platform picks (``platform.modelcar_registry()``).
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from . import processes
from .errors import PlatformError, SetupError
from .secretfiles import write_secret
from .settings import get_settings

CONFIG_TEMPLATE = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {host}:{port}
auth:
  htpasswd:
    realm: maas-workshop
    path: {htpasswd}
"""


@dataclass(frozen=True)
class RegistryCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"RegistryCredentials(username={self.username!r}, password='***')"


@dataclass(frozen=True)
class Registry:
    """A running registry: where it listens and who may push."""

    address: str  # host:port, the prefix of image references
    credentials: RegistryCredentials
    pid: int

    @property
    def username(self) -> str:
        return self.credentials.username

    def reference(self, repository: str, tag: str) -> str:
        return f"{self.address}/{repository}:{tag}"

    def modelcar_uri(self, reference: str, digest: str | None) -> str:
        """What to deploy: the pushed reference (the local platform verifies every digest as it pulls)."""
        return f"oci://{reference}"


USERNAME_ENV = "MAAS_CLUSTER_REGISTRY_USERNAME"
PASSWORD_ENV = "MAAS_CLUSTER_REGISTRY_PASSWORD"  # a token on OpenShift: `oc whoami -t`


@dataclass(frozen=True)
class ClusterRegistry:
    """The registry a cluster pulls ModelCars from: pushed to from here, pulled by the nodes by digest."""

    address: str  # host[:port]/namespace this notebook pushes to (MAAS_CLUSTER_REGISTRY)
    pull_address: str  # the same registry as the cluster's nodes reach it (MAAS_CLUSTER_REGISTRY_PULL)
    username: str  # for display; the password stays in the auth file
    authfile: Path  # containers-auth.json (mode 0600) skopeo reads: no password on a command line
    pid: None = None  # not ours to start or stop

    def reference(self, repository: str, tag: str) -> str:
        """``address/repository:tag`` with the repository flattened (``modelcars/x`` -> ``modelcars-x``):
        OpenShift's internal registry (and quay.io) take only ``namespace/name``."""
        return f"{self.address}/{repository.replace('/', '-')}:{tag}"

    def modelcar_uri(self, reference: str, digest: str | None) -> str:
        """What to deploy: the pushed image as the nodes reach it, pinned by the digest the registry stored."""
        if not digest:
            raise PlatformError(f"push the image to {reference} first: deploying needs the digest the push returns")
        if not reference.startswith(self.address + "/"):
            raise PlatformError(f"{reference} was not pushed to {self.address}")
        repository = reference[len(self.address) + 1:].rsplit(":", 1)[0]
        return f"oci://{self.pull_address}/{repository}@{digest}"


def _folder() -> Path:
    return get_settings().state_dir / "registry"


def _credentials() -> RegistryCredentials:
    """The registry's credentials, generated once per state folder."""
    path = _folder() / "credentials.json"
    if not path.is_file():
        write_secret(path, json.dumps({"username": "workshop", "password": secrets.token_urlsafe(18)}))
    return RegistryCredentials(**json.loads(path.read_text()))


def htpasswd_command(username: str) -> list[str]:
    """bcrypt one user's password, read from stdin (-i): a password on the command line shows in `ps`."""
    return ["htpasswd", "-iBn", username]


def _write_htpasswd(credentials: RegistryCredentials, path: Path) -> None:
    if not shutil.which("htpasswd"):
        raise SetupError("htpasswd is missing (Debian package apache2-utils); run: make setup")
    out = subprocess.run(htpasswd_command(credentials.username), input=credentials.password,
                         capture_output=True, text=True, check=True)
    write_secret(path, out.stdout)


def _record_path() -> Path:
    return get_settings().run_dir / "registry.json"


def running_registry() -> Registry | None:
    """The registry this workshop started, if it still runs."""
    record = processes.live_record(_record_path())
    return Registry(record["address"], _credentials(), record["pid"]) if record else None


def start_registry(port: int | None = None, timeout_s: float = 30.0) -> Registry:
    """Start the local registry (or return the running one); ready when /v2/ answers 401."""
    existing = running_registry()
    if existing:
        return existing
    binary = shutil.which("docker-registry")
    if not binary:
        raise SetupError("docker-registry is missing (Debian package docker-registry); run: make setup")
    settings = get_settings()
    folder = _folder()
    (folder / "storage").mkdir(parents=True, exist_ok=True)
    credentials = _credentials()
    _write_htpasswd(credentials, folder / "htpasswd")
    port = processes.claim_port(port, settings.host)
    config = folder / "config.yml"
    config.write_text(CONFIG_TEMPLATE.format(storage=folder / "storage", host=settings.host, port=port,
                                             htpasswd=folder / "htpasswd"))
    log = settings.logs_dir / "registry.log"
    handle = processes.start([binary, "serve", str(config)], log, {"OTEL_TRACES_EXPORTER": "none"})
    address = f"{settings.host}:{port}"
    processes.write_record(_record_path(), handle, address=address)

    def asks_for_a_login() -> bool:
        try:
            return requests.get(f"http://{address}/v2/", timeout=2).status_code == 401
        except requests.RequestException:
            return False

    if processes.wait_until(handle, asks_for_a_login, timeout_s, interval_s=0.2) == "ready":
        return Registry(address, credentials, handle.pid)
    stop_registry()
    raise PlatformError(f"the registry did not start on {address}. {processes.describe_log(log)}")


def stop_registry() -> bool:
    """Stop the registry this workshop started; its images stay on disk."""
    return processes.stop_recorded(_record_path())


def auth_file(registry: Registry | ClusterRegistry) -> Path:
    """A containers-auth.json for skopeo (mode 0600), so no password is on a command line."""
    if isinstance(registry, ClusterRegistry):
        return registry.authfile
    token = base64.b64encode(f"{registry.credentials.username}:{registry.credentials.password}".encode()).decode()
    return write_secret(_folder() / "auth.json", json.dumps({"auths": {registry.address: {"auth": token}}}))


# -- the cluster's registry ---------------------------------------------------
def _login_in(authfile: Path, host: str) -> str | None:
    """The username an auth file holds for ``host`` (None when it has no entry for it)."""
    try:
        auths = json.loads(authfile.read_text()).get("auths") or {}
    except (OSError, ValueError):
        return None
    for key, entry in auths.items():
        if key.removeprefix("https://").split("/")[0] == host:
            auth = (entry or {}).get("auth")
            return base64.b64decode(auth).decode().split(":", 1)[0] if auth else "(token)"
    return None


def _existing_logins() -> list[Path]:
    """Where podman/skopeo/`oc registry login` keep logins by default."""
    paths = [os.environ.get("REGISTRY_AUTH_FILE", ""),
             str(Path(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent")) / "containers" / "auth.json"),
             str(Path.home() / ".docker" / "config.json")]
    return [Path(p) for p in paths if p and Path(p).is_file()]


def cluster_login(address: str, authfile: str = "") -> tuple[Path, str]:
    """(auth file, username) for pushing to ``address``: MAAS_CLUSTER_REGISTRY_AUTHFILE, else
    MAAS_CLUSTER_REGISTRY_USERNAME/PASSWORD written to a mode-0600 auth file, else an existing login."""
    host = address.split("/")[0]
    if authfile:
        path = Path(authfile).expanduser()
        if not path.is_file():
            raise SetupError(f"MAAS_CLUSTER_REGISTRY_AUTHFILE={authfile} does not exist: write it with "
                             f"`oc registry login --to={authfile}` (OpenShift) or `podman login --authfile "
                             f"{authfile} {host}`")
        return path, _login_in(path, host) or "(from the auth file)"
    username, password = os.environ.get(USERNAME_ENV, ""), os.environ.get(PASSWORD_ENV, "")
    if username and password:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        path = write_secret(_folder() / "cluster-auth.json", json.dumps({"auths": {host: {"auth": token}}}))
        return path, username
    for path in _existing_logins():
        found = _login_in(path, host)
        if found:
            return path, found
    raise SetupError(
        f"no login for the cluster registry {host}: set MAAS_CLUSTER_REGISTRY_AUTHFILE to a containers auth file "
        "(`oc registry login --to=FILE` on OpenShift), or MAAS_CLUSTER_REGISTRY_USERNAME and "
        "MAAS_CLUSTER_REGISTRY_PASSWORD (on OpenShift any user name and the token of `oc whoami -t`) in the "
        "environment; never on a command line.")


def cluster_registry(settings=None) -> ClusterRegistry:
    """The registry a cluster pulls ModelCars from (``MAAS_CLUSTER_REGISTRY``), with a login; a clear error
    saying what to set when it is not configured."""
    settings = settings or get_settings()
    if not settings.cluster_registry:
        raise SetupError(
            "on a cluster a ModelCar is pushed to a registry the cluster pulls from, and MAAS_CLUSTER_REGISTRY is "
            "not set. Set MAAS_CLUSTER_REGISTRY to host[:port]/namespace where you may push (OpenShift: "
            "`oc registry info --public`/<your namespace>), MAAS_CLUSTER_REGISTRY_PULL to the same registry as the "
            "nodes reach it (OpenShift: image-registry.openshift-image-registry.svc:5000/<your namespace>; empty: "
            "the same address), and the login: MAAS_CLUSTER_REGISTRY_AUTHFILE, or MAAS_CLUSTER_REGISTRY_USERNAME and "
            "MAAS_CLUSTER_REGISTRY_PASSWORD.")
    address = settings.cluster_registry.rstrip("/")
    path, username = cluster_login(address, settings.cluster_registry_authfile)
    pull = (settings.cluster_registry_pull or address).rstrip("/")
    return ClusterRegistry(address, pull, username, path)
