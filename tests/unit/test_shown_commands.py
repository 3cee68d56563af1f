"""The commands the labs show: vLLM's from the running process, GuideLLM's from its log, lm-eval's from the
arguments the helper passes. Each shown line must parse back to what really runs, and never hold a key."""
from __future__ import annotations

import json
import secrets
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from kubernetes.client.exceptions import ApiException

from helpers import bench, evaluate, kserve, processes
from helpers.cluster import client as kube
from helpers.cluster import labels
from helpers.errors import BenchmarkError
from helpers.platform import Deployment, KubernetesPlatform, LocalPlatform, OpenShiftPlatform
from helpers.platform.local import ServerOptions, vllm_command, vllm_environment
from helpers.settings import get_settings
from helpers.shell import shell_line, shorten

KEY = "sk-maas-" + secrets.token_hex(8)  # made per run: no key-shaped literal in git


def _words(line: str) -> tuple[dict[str, str], list[str]]:
    """A shown line split back into its leading VAR=value words and the command."""
    words = shlex.split(line)
    env = {}
    while words and "=" in words[0] and not words[0].startswith("-") and "/" not in words[0].split("=")[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, words


# -- vLLM ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def sleeping_vllm(tmp_path, monkeypatch):
    """A process started exactly as LocalPlatform starts vLLM (same command builder, same environment), whose
    `vllm.entrypoints.openai.api_server` module only sleeps; and its deployment record."""
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path / "state"))
    fake = tmp_path / "fake" / "vllm" / "entrypoints" / "openai"
    fake.mkdir(parents=True)
    for folder in (fake.parent.parent, fake.parent, fake):
        (folder / "__init__.py").write_text("")
    (fake / "api_server.py").write_text("import time\ntime.sleep(60)\n")
    options = ServerOptions(dtype="bfloat16", max_model_len=1024)
    command = vllm_command(Path(sys.executable), get_settings().root / "models" / "tiny", "parasol-tiny",
                           "127.0.0.1", 1, options)  # port 1: nothing answers there
    environment = vllm_environment(3)
    handle = processes.start(command, tmp_path / "vllm.log", {**environment, "PYTHONPATH": str(tmp_path / "fake")})
    platform = LocalPlatform()
    platform._write({"name": "parasol-tiny", "model": "m", "endpoint": "http://127.0.0.1:1/v1", "pid": handle.pid,
                     "create_time": handle.create_time, "port": 1, "log": str(tmp_path / "vllm.log")})
    yield platform, command, environment
    processes.stop(handle)


def test_the_vllm_line_is_the_command_and_environment_the_platform_started(sleeping_vllm):
    platform, command, environment = sleeping_vllm
    line = platform.server_command("parasol-tiny")
    assert line == shell_line(command, environment)
    env, words = _words(line)
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3" and "PYTHONPATH" not in env  # only vLLM's own variables
    assert words[words.index("--dtype") + 1] == "bfloat16" and words[words.index("--max-model-len") + 1] == "1024"
    assert "--enforce-eager" in words and words[3] == "--model" and words[4] == "models/tiny"  # relative: shortened


def test_paths_are_shortened_only_inside_the_workshop_folder():
    line = shell_line(["python", "/work/x/models/a", "/work/xy/b", "kind=json,path=/work/x/out.json"],
                      root=Path("/work/x"))
    assert line == "python models/a /work/xy/b kind=json,path=out.json"


def test_the_cluster_line_is_the_runtime_command_then_the_inference_service_args():
    runtime = kserve.serving_runtime(env=(("VLLM_LOGGING_LEVEL", "INFO"),))
    runtime["spec"]["containers"][0]["env"].append(
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}})
    isvc = {"metadata": {"name": "granite", "labels": labels.workshop_labels("platform-team")},
            "spec": {"predictor": {"model": {"runtime": kserve.DEFAULT_RUNTIME, "storageUri": kserve.DEFAULT_MODELCAR,
                                             "args": ["--max-model-len=8192", "--dtype=bfloat16"]}}}}
    objects = {"inferenceservices": isvc, "servingruntimes": runtime}
    api = SimpleNamespace(get_namespaced_custom_object=lambda group, version, ns, plural, name: objects[plural])
    connection = kube.Connection(SimpleNamespace(sanitize_for_serialization=lambda o: o), api, api, None, "fake")
    env, words = _words(KubernetesPlatform(connection=connection).server_command("granite"))
    assert words[:3] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert "--served-model-name=granite" in words and words[-2:] == ["--max-model-len=8192", "--dtype=bfloat16"]
    assert env["VLLM_LOGGING_LEVEL"] == "INFO" and "HF_TOKEN" not in env  # a secret's reference is not shown


def test_a_runtime_the_attendee_may_not_read_says_where_to_look():
    isvc = {"metadata": {"name": "granite"},
            "spec": {"predictor": {"model": {"runtime": "vllm-cuda-runtime", "args": ["--max-model-len=8192"]}}}}

    def get(group, version, namespace, plural, name):
        if plural == "servingruntimes":
            raise ApiException(status=403, reason="Forbidden")
        return isvc

    api = SimpleNamespace(get_namespaced_custom_object=get)
    connection = kube.Connection(SimpleNamespace(sanitize_for_serialization=lambda o: o), api, api, None, "fake")
    line = OpenShiftPlatform(connection=connection).server_command("granite")
    assert "oc get servingruntime vllm-cuda-runtime" in line and line.endswith("\n--max-model-len=8192")


# -- GuideLLM -----------------------------------------------------------------------------------------------------
def test_guidellm_line_is_the_first_line_of_its_log_without_the_key(tmp_path):
    command = bench.guidellm_command("http://127.0.0.1:4000", tmp_path / "m", tmp_path, bench.BenchConfig(), "m")
    (tmp_path / "guidellm.log").write_text(f"$ {bench.shown_command(command, api_key=True)}\nGuideLLM output\n")
    env, words = _words(bench.last_command(tmp_path))
    assert words == shlex.split(shorten(shlex.join(command))) and env == {bench.API_KEY_ENV: "$MAAS_API_KEY"}
    with pytest.raises(BenchmarkError, match="no GuideLLM run"):
        bench.last_command(tmp_path / "nothing")


# -- lm-eval ------------------------------------------------------------------------------------------------------
def _parsed(line: str) -> tuple[dict[str, str], dict[str, str]]:
    """The lm_eval line's flags ({"--model": ...}) and its model_args parsed as lm-eval parses them."""
    from lm_eval.utils import simple_parse_args_string

    env, words = _words(line)
    assert words[0] == "lm_eval"
    flags, rest = {}, words[1:]
    while rest:
        flag = rest.pop(0)
        flags[flag] = rest.pop(0) if rest and not rest[0].startswith("--") else True
    return env, {**flags, "model_args": simple_parse_args_string(flags["--model_args"])}


def test_the_lm_eval_line_parses_back_to_what_run_passes(monkeypatch, tmp_path):
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path))
    served = Deployment("parasol-tiny", "m", "http://127.0.0.1:8001/v1", "ready", {})
    call = evaluate.served_call(served, tmp_path / "tokenizer")
    env, flags = _parsed(evaluate.lm_eval_command(call, limit=5))
    assert env == {} and flags["--model"] == call.model == "local-completions"
    assert flags["model_args"] == call.model_args and flags["model_args"]["num_concurrent"] == 8
    assert flags["--tasks"].split(",") == list(call.tasks) and flags["--batch_size"] == str(call.batch_size)
    assert flags["--limit"] == "5" and (Path(flags["--include_path"]) / "parasol_arith.yaml").is_file()


@pytest.mark.parametrize("chat", [False, True])
def test_the_gateway_lm_eval_line_names_the_key_variable_never_the_key(monkeypatch, tmp_path, chat):
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path))
    call = evaluate.gateway_call("http://127.0.0.1:4000/v1", "parasol-tiny", tmp_path / "tokenizer", chat=chat)
    line = evaluate.lm_eval_command(call, api_key=True)
    assert KEY not in line and "MAAS_API_KEY" in line
    env, flags = _parsed(line)
    assert env == {"OPENAI_API_KEY": "$MAAS_API_KEY"}
    assert flags["model_args"] == call.model_args and flags["--tasks"].split(",") == list(call.tasks)
    assert flags.get("--apply_chat_template", False) is chat
    assert flags["model_args"]["tokenized_requests"] is False


def test_evaluate_passes_the_same_call_it_shows(monkeypatch, tmp_path):
    """evaluate_served/_through_gateway hand _run exactly the call lm_eval_command shows (one source)."""
    seen = []
    monkeypatch.setattr(evaluate, "_run", lambda call, limit, api_key=None: seen.append((call, api_key)))
    served = Deployment("parasol-tiny", "m", "http://127.0.0.1:8001/v1", "ready", {})
    evaluate.evaluate_served(served, tmp_path)
    evaluate.evaluate_through_gateway("http://gw/v1", "parasol-tiny", KEY, tmp_path, chat=True)
    assert seen[0] == (evaluate.served_call(served, tmp_path), None)
    assert seen[1] == (evaluate.gateway_call("http://gw/v1", "parasol-tiny", tmp_path, chat=True), KEY)
    assert KEY not in json.dumps(seen[1][0].model_args)
