"""ModelCar for real: build, push to the local registry (htpasswd), pull, refusals. Deploying by oci:// URI and
chatting is Lab 4's (tests/notebooks: test_lab4_modelcar_is_reproducible_and_served_by_uri, which checks the
served digest and the answer): a vLLM start here would repeat it."""
import json
import tarfile

import pytest

from helpers import modelcar, registry
from helpers.models import ensure_tiny_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hub():
    started = registry.start_registry()
    yield started
    assert registry.stop_registry() is True
    assert registry.running_registry() is None


@pytest.fixture(scope="module")
def pushed(hub, tmp_path_factory):
    work = tmp_path_factory.mktemp("modelcar")
    image = modelcar.build_modelcar(ensure_tiny_model(show_progress=False).path, work / "layout", "v1")
    reference = hub.reference("modelcars/parasol-tiny", "test")
    digest = modelcar.push(image, reference, registry.auth_file(hub))
    return image, reference, digest, work


def test_the_same_model_always_builds_the_same_digest(pushed, tmp_path):
    image, _, digest, _ = pushed
    again = modelcar.build_modelcar(ensure_tiny_model(show_progress=False).path, tmp_path / "again", "v1")
    assert again.digest == image.digest == digest


def test_the_image_is_a_shell_plus_models(pushed):
    image, *_ = pushed
    index = json.loads((image.layout / "index.json").read_text())
    manifest = json.loads((image.layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    base, models = [image.layout / "blobs/sha256" / layer["digest"][7:] for layer in manifest["layers"]]
    with tarfile.open(base) as tar:
        assert tar.getmember("bin/sh").linkname == "busybox" and tar.getmember("bin/sleep").issym()
    with tarfile.open(models) as tar:
        names = tar.getnames()
        assert "models/config.json" in names and "models/model.safetensors" in names
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_pull_verifies_and_unpacks_the_model(pushed, tmp_path):
    image, reference, _, _ = pushed
    folder, digest = modelcar.pull_and_unpack(reference, tmp_path / "model", registry.auth_file(registry.running_registry()))
    assert digest == image.digest and (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()


def test_a_wrong_password_is_refused(pushed, hub, tmp_path):
    _, reference, _, _ = pushed
    bad = tmp_path / "auth.json"
    bad.write_text(json.dumps({"auths": {hub.address: {"auth": "d29ya3Nob3A6d3Jvbmc="}}}))
    with pytest.raises(modelcar.RegistryAuthError, match="refused the credentials"):
        modelcar.pull_and_unpack(reference, tmp_path / "m", bad)
    with pytest.raises(modelcar.RegistryAuthError):
        modelcar.pull_and_unpack(reference, tmp_path / "m", None)  # no login at all


def test_an_unknown_tag_is_named(hub, tmp_path):
    with pytest.raises(modelcar.ImageNotFoundError, match="no image .*:v404 in the registry"):
        modelcar.pull_and_unpack(hub.reference("modelcars/parasol-tiny", "v404"), tmp_path / "m", registry.auth_file(hub))


def test_an_image_without_models_is_not_a_modelcar(hub, tmp_path):
    shell = modelcar.build_shell_image(tmp_path / "shell", "v1")
    reference = hub.reference("modelcars/shell-only", "v1")
    modelcar.push(shell, reference, registry.auth_file(hub))
    with pytest.raises(modelcar.ModelCarError, match="no /models folder"):
        modelcar.pull_and_unpack(reference, tmp_path / "m", registry.auth_file(hub))
    assert not (tmp_path / "m").exists()
