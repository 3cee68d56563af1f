"""The GitOps model list on the local platform: its `local:` section, adding an entry, refusals."""
from __future__ import annotations

import pytest
import yaml

from helpers import gitops
from helpers.cluster.manifests import load_model_list
from helpers.errors import PlatformError


def test_the_committed_list_serves_the_tiny_model_here_and_still_renders_the_cluster():
    local = gitops.load_local_models()
    assert local[0].name == "parasol-tiny" and local[0].model == "parasol-tiny" and local[0].scheme is None
    cluster = load_model_list(gitops.committed_list())  # the same file the manifests come from
    assert cluster.shared and cluster.kind


def test_a_working_copy_is_the_committed_list_and_lives_outside_the_repository(tmp_path):
    copy = gitops.working_copy(tmp_path)
    assert copy.read_text() == gitops.committed_list().read_text() and copy.parent == tmp_path


def test_adding_a_model_appends_one_entry_and_shows_the_change_as_a_diff(tmp_path):
    copy = gitops.working_copy(tmp_path)
    change = gitops.add_model(copy, {"name": "parasol-tiny-w8a8", "model": "parasol-tiny-w8a8",
                                     "stands_in_for": "llama-3-1-8b-instruct"})
    added = [line for line in change.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added == ["+  - name: parasol-tiny-w8a8", "+    model: parasol-tiny-w8a8",
                     "+    stands_in_for: llama-3-1-8b-instruct"]
    models = gitops.load_local_models(copy)
    assert [m.name for m in models] == ["parasol-tiny", "parasol-tiny-w8a8"] and models[1].scheme == "w8a8"
    assert yaml.safe_load(copy.read_text())["models"] == yaml.safe_load(gitops.committed_list().read_text())["models"]


@pytest.mark.parametrize("entry, message", [
    ({"name": "Llama_3", "model": "parasol-tiny"}, "not a valid model name"),
    ({"name": "llama", "model": "meta-llama/Llama-3.1-8B"}, "is not 'parasol-tiny'"),
    ({"name": "llama", "model": "parasol-tiny-w3a3"}, "unknown quantization scheme 'w3a3'"),
    ({"name": "parasol-tiny", "model": "parasol-tiny"}, "listed twice"),
    ({"model": "parasol-tiny"}, "needs `name` and `model`"),
])
def test_an_entry_the_platform_cannot_serve_is_refused_and_the_list_left_as_it_was(tmp_path, entry, message):
    copy = gitops.working_copy(tmp_path)
    before = copy.read_text()
    with pytest.raises(Exception, match=message):
        gitops.add_model(copy, entry)
    assert copy.read_text() == before


def test_adding_needs_the_local_section_last(tmp_path):
    copy = tmp_path / "models.yaml"
    copy.write_text("local:\n  - name: parasol-tiny\n    model: parasol-tiny\nkind: []\n")
    with pytest.raises(gitops.ModelListError, match="must come last"):
        gitops.add_model(copy, {"name": "other", "model": "parasol-tiny"})
    assert "other" not in copy.read_text()


class _ClusterPlatform:  # an error path only: reconcile never deploys on a cluster
    kind = "openshift"


def test_on_a_cluster_the_gitops_controller_reconciles_not_the_notebook():
    with pytest.raises(PlatformError, match="commit manifests/models.yaml"):
        gitops.reconcile(_ClusterPlatform())


def test_an_empty_local_list_is_refused(tmp_path):
    empty = tmp_path / "models.yaml"
    empty.write_text("local: []\n")

    class _Local:
        kind = "local"

    with pytest.raises(gitops.ModelListError, match="empty"):
        gitops.reconcile(_Local(), empty)


CLUSTER = ["granite-3-1-2b-instruct", "granite-3-1-8b-instruct-w4a16", "llama-3-1-8b-instruct"]
RIGHT = {"name": "parasol-tiny-w8a8", "model": "parasol-tiny-w8a8", "stands_in_for": "llama-3-1-8b-instruct"}


@pytest.mark.parametrize("entry, hint", [
    (RIGHT, None),
    ({"name": "llama", "model": "parasol-tiny-w8a8"}, "exactly three keys"),
    ({**RIGHT, "name": "llama.3"}, "DNS label"),
    ({**RIGHT, "name": "parasol-tiny"}, "listed already"),
    ({**RIGHT, "model": "parasol-tiny"}, "served already"),
    ({**RIGHT, "model": "meta-llama/Llama-3.1-8B-Instruct"}, "parasol-tiny-<scheme>"),
    ({**RIGHT, "stands_in_for": "llama-4"}, "one of"),
    ({**RIGHT, "stands_in_for": "granite-3-1-2b-instruct"}, "Joe asked for Llama"),
])
def test_joes_entry_gets_a_hint_that_names_what_is_wrong(entry, hint):
    from helpers.checks import list_entry_mistake

    mistake = list_entry_mistake(entry, ["parasol-tiny"], CLUSTER)
    assert mistake is None if hint is None else hint in mistake
