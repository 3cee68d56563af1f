"""A model server whose engine fails must be reported as dead, with the root
cause from its log, not as a mysterious HTTP 500 or connection error. A real failure, not a fake:
vLLM 0.32 on CPU accepts a W8A8 checkpoint in float32, then its int8 kernel
refuses the first request ("expect A to be bfloat16 or half")."""
import pytest

from helpers import quantize
from helpers.client import ask
from helpers.errors import ServerDiedError
from helpers.models import ensure_tiny_model, training_examples
from helpers.platform import LocalPlatform

pytestmark = pytest.mark.integration


def test_a_failed_engine_is_reported_with_its_log(tmp_path):
    model = ensure_tiny_model(show_progress=False)
    checkpoint = tmp_path / "w8a8"
    quantize.quantize(model.path, "w8a8", checkpoint, [e.text for e in training_examples()[::100]][:64])
    platform = LocalPlatform()
    deployment = platform.deploy(checkpoint, "w8a8-in-float32", dtype="float32")
    try:
        # the API server outlives its engine for a moment (/health answers 503), then exits
        died = r"(?s)(has a failed engine|is no longer running).*First error: .*bfloat16 or half"
        with pytest.raises(ServerDiedError, match=died):
            ask(deployment, "What is 2 + 2?")
        with pytest.raises(ServerDiedError, match=died):
            platform.get("w8a8-in-float32")
    finally:
        platform.undeploy("w8a8-in-float32")
    assert "w8a8-in-float32" not in [d.name for d in platform.list()]
