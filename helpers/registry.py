"""A local OCI registry (the CNCF distribution registry) with htpasswd auth.

It plays the part of quay.io for ModelCar images on the local platform. The
credentials are generated on first start and stored, readable only by you, in
the state folder: never in git, never in a notebook output.
"""
from __future__ import annotations

import json
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

    def reference(self, repository: str, tag: str) -> str:
        return f"{self.address}/{repository}:{tag}"


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


def auth_file(registry: Registry) -> Path:
    """A containers-auth.json for skopeo (mode 0600), so no password is on a command line."""
    import base64

    token = base64.b64encode(f"{registry.credentials.username}:{registry.credentials.password}".encode()).decode()
    return write_secret(_folder() / "auth.json", json.dumps({"auths": {registry.address: {"auth": token}}}))
