"""vLLM's running usage is taken off each streamed chunk before LiteLLM copies it (0.2 ms a chunk) and kept
for hang-ups; the stream's final usage-only chunk reaches LiteLLM as it is. Run through LiteLLM's own chat
config lookup and stream parser, in the gateway's venv."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECKS = r"""
import json, os
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
from litellm.types.utils import LlmProviders
from litellm.utils import ProviderConfigManager
from helpers.gateway import running_usage

def chunk(stream, n, content="x", finish=None, choices=True):
    return {"id": stream, "object": "chat.completion.chunk", "created": 1, "model": "parasol-tiny",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}] if choices else [],
            "usage": {"prompt_tokens": 18, "completion_tokens": n, "total_tokens": 18 + n}}

before = type(ProviderConfigManager.get_provider_chat_config(model="m", provider=LlmProviders.HOSTED_VLLM)).__name__
running_usage.install()
config = ProviderConfigManager.get_provider_chat_config(model="m", provider=LlmProviders.HOSTED_VLLM)
parser = config.get_model_response_iterator(iter([]), sync_stream=True)
out = {"before": before, "after": type(config).__name__}
# a finished stream: 3 tokens, the finish chunk, then the usage-only chunk
parsed = [parser.chunk_parser(chunk("chatcmpl-a", n)) for n in (1, 2, 3)]
parsed.append(parser.chunk_parser(chunk("chatcmpl-a", 3, content="", finish="stop")))
final = parser.chunk_parser(chunk("chatcmpl-a", 3, choices=False))
out["content_usages"] = [getattr(p, "usage", None) is not None for p in parsed]
out["final_usage"] = dict(final.usage) if getattr(final, "usage", None) else None
out["finished_forgotten"] = running_usage.last_usage("chatcmpl-a")
# a stream cut after 5 tokens: its running usage is there once, for the hang-up's row
for n in range(1, 6):
    parser.chunk_parser(chunk("chatcmpl-b", n))
out["cut"] = running_usage.last_usage("chatcmpl-b")
out["cut_again"] = running_usage.last_usage("chatcmpl-b")
out["no_id"] = running_usage.last_usage(None)
print(json.dumps(out, default=str))
"""


def test_running_usage_is_kept_aside_and_the_final_usage_passes():
    from helpers.gateway import proxy

    run = subprocess.run([str(proxy.gateway_python()), "-c", CHECKS], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["before"] == "HostedVLLMChatConfig" and out["after"] == "RunningUsageVLLMConfig"
    assert out["content_usages"] == [False, False, False, False]  # LiteLLM never copies a running usage
    assert out["final_usage"]["prompt_tokens"] == 18 and out["final_usage"]["completion_tokens"] == 3
    assert out["finished_forgotten"] is None  # nothing kept for a stream that ended
    assert out["cut"] == {"prompt_tokens": 18, "completion_tokens": 5, "total_tokens": 23}
    assert out["cut_again"] is None and out["no_id"] is None
