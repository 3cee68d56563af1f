"""Lab 5's helpers on a cluster platform, without a cluster: the models come from the shared gateway, and its
latency cost is measured where the models take traffic from the gateway only.

The gateway Deployment is the one ``manifests/`` renders, turned into the client's model objects (as in
test_cluster_gateway.py; SHAPED LIKE THE REAL API, NOT CAPTURED FROM A CLUSTER). The timing headers come from a
real HTTP server on 127.0.0.1 answering as LiteLLM does (header names from LiteLLM's
``proxy/common_request_processing.py``; the same method ran once against the real local gateway, README).
"""
from __future__ import annotations

import http.server
import json
from pathlib import Path

import pytest

from helpers import maas
from helpers.cluster import gateway as cluster_gateway
from helpers.cluster import manifests
from helpers.errors import PlatformError, WorkshopError
from helpers.platform import Deployment, KubernetesPlatform, OpenShiftPlatform
from helpers.settings import get_settings
from tests.unit.local_servers import serving
from tests.unit.test_cluster_gateway import NS, READY, FakeApi, connection, with_status


def test_lab5_takes_the_models_the_shared_gateway_routes():
    platform = OpenShiftPlatform(connection=connection(FakeApi([with_status(**READY)])))
    models = maas.lab_models(platform)
    assert list(models) == ["granite-3-1-2b-instruct", "granite-3-1-8b-instruct-w4a16"]  # the GitOps list's order
    first = models["granite-3-1-2b-instruct"]
    assert first.status == "shared" and first.details["reached_through"] == "the gateway only"
    assert first.endpoint == "http://granite-3-1-2b-instruct-predictor.maas-models.svc.cluster.local:8080/v1"
    assert list(maas.lab_models(platform, count=1)) == ["granite-3-1-2b-instruct"]


def test_a_gateway_with_too_few_models_says_how_to_add_one():
    kind = with_status(**READY)
    env = kind["spec"]["template"]["spec"]["containers"][0]["env"]
    next(e for e in env if e["name"] == "MAAS_GATEWAY_MODELS")["value"] = "parasol-tiny"
    platform = KubernetesPlatform(connection=connection(FakeApi([kind])))
    with pytest.raises(PlatformError, match="needs 2 models.*routes 1 \\(parasol-tiny\\).*manifests/models.yaml"):
        maas.lab_models(platform)


@pytest.fixture
def litellm_like():
    """A real HTTP server answering chat completions as the gateway does: after 40 ms, saying that 30 ms of it
    were the model call (x-litellm-response-duration-ms 32, x-litellm-overhead-duration-ms 2)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            import time

            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.04)
            body = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
                               "choices": [{"index": 0, "finish_reason": "length",
                                            "message": {"role": "assistant", "content": "42"}}],
                               "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header(maas.TOTAL_HEADER, "32.0")
            self.send_header(maas.OVERHEAD_HEADER, "2.0")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as port:
        yield f"http://127.0.0.1:{port}/v1"


def test_on_a_cluster_the_direct_leg_is_the_model_call_the_gateway_timed(litellm_like):
    gateway = cluster_gateway.ClusterGateway(litellm_like, ("granite-3-1-2b-instruct",), NS)
    shared = Deployment("granite-3-1-2b-instruct", "", "http://refused/v1", "shared", {})
    overhead = maas.latency_overhead(shared, gateway, "sk-maas-x", requests_count=4)
    assert overhead["p50_direct_ms"] == pytest.approx(30.0)
    assert overhead["p50_gateway_ms"] >= 40.0 and overhead["overhead_ms"] >= 10.0
    assert "gateway's pod" in maas.direct_leg(gateway)


def test_an_answer_without_the_timing_headers_is_an_error():
    assert maas.model_call_ms({maas.TOTAL_HEADER: "12.5", maas.OVERHEAD_HEADER: "0.5"}) == 12.0
    with pytest.raises(WorkshopError, match="x-litellm-response-duration-ms"):
        maas.model_call_ms({maas.TOTAL_HEADER: "12.5"})
    with pytest.raises(WorkshopError):
        maas.model_call_ms({maas.TOTAL_HEADER: "None", maas.OVERHEAD_HEADER: "None"})  # LiteLLM's "unknown"


def test_kind_gateway_names_the_models_it_routes(tmp_path):
    """On kind the gateway routes the kind list: its MAAS_GATEWAY_MODELS (what Lab 5 reads) says the same."""
    import shutil

    import yaml

    from helpers.cluster import validate

    copy_root = tmp_path / "manifests"
    shutil.copytree(get_settings().root / "manifests", copy_root, ignore=shutil.ignore_patterns("secrets.env"))
    manifests.write_secrets_env(copy_root)
    for overlay in ("overlays/kind", "overlays/openshift", "."):
        objects = validate.kustomize_build(copy_root / overlay)
        deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "maas-gateway")
        routed = cluster_gateway.routed_models(deployment)
        config = yaml.safe_load(next(o for o in objects if o["kind"] == "ConfigMap")["data"]["litellm.yaml"])
        assert sorted(routed) == sorted(m["model_name"] for m in config["model_list"]), overlay


def test_lab6_measures_straight_at_the_model_here_and_through_the_gateway_on_a_cluster():
    """The shared models take traffic from the gateway only: on a cluster GuideLLM's load goes through it with the
    attendee's key (the model named, the key in the environment); on this machine straight at vLLM, as before."""
    from helpers.bench import BenchConfig, guidellm_command, guidellm_env
    from helpers.gateway.proxy import Gateway

    shared = Deployment("granite-3-1-2b-instruct", "", "http://refused/v1", "shared", {})
    on_cluster = cluster_gateway.ClusterGateway("https://maas-gateway.apps.example/v1", (shared.name,), NS)
    route = maas.bench_route(on_cluster, "sk-maas-attendee")
    assert route == ("https://maas-gateway.apps.example/v1", "sk-maas-attendee")
    command = " ".join(guidellm_command(route[0].removesuffix("/v1"), "/m", Path("/tmp/x"), BenchConfig(), shared.name))
    assert "maas-gateway.apps.example" in command and "refused" not in command and "sk-maas" not in command
    assert "sk-maas-attendee" in guidellm_env(route[1]).values()
    assert maas.bench_route(Gateway("http://127.0.0.1:4000/v1", (shared.name,), 1), "sk-maas-attendee") is None


def test_on_kind_lab5_finds_the_tiny_model_and_its_w8a8_copy():
    """kind's gateway (the Deployment its overlay renders from the `kind:` list) routes two models: Lab 5 runs."""
    kind_models = manifests.load_model_list().kind
    deployment = next(o for o in manifests.gateway_objects(NS, kind_models) if o["kind"] == "Deployment")
    platform = KubernetesPlatform(connection=connection(FakeApi([{**deployment, "metadata": {
        **deployment["metadata"], "generation": 2}, "status": READY}])))
    models = maas.lab_models(platform)
    assert list(models) == ["parasol-tiny", "parasol-tiny-w8a8"]
    assert models["parasol-tiny-w8a8"].endpoint == \
        "http://parasol-tiny-w8a8-predictor.maas-models.svc.cluster.local:8080/v1"


def test_kind_setup_builds_and_pushes_a_modelcar_for_every_model_of_the_kind_list():
    import re

    script = (get_settings().root / "scripts" / "kind-setup.sh").read_text()
    names = [m.storage_uri.rsplit("/", 1)[1].removesuffix(":v1") for m in manifests.load_model_list().kind]
    assert [m.storage_uri for m in manifests.load_model_list().kind] == \
        [f"oci://{manifests.KIND_REGISTRY}/modelcars/{name}:v1" for name in names]
    built = re.findall(r'build_modelcar\(.*, "\$STATE/([a-z0-9-]+)-oci", "v1"\)', script)
    pushed = re.search(r"for model in ([a-z0-9 -]+); do\n.*docker://localhost:\$\{REGISTRY_PORT\}/modelcars/"
                       r"\$\{model\}:v1", script).group(1).split()
    assert built == pushed == names
