"""A real inference engine for the tests: llama.cpp's server, as llama-cpp-python ships it,
serving a tiny random-weight llama model that this module writes itself.

Nothing is downloaded: ``write_model`` builds a two-layer llama GGUF with the ``gguf``
package (random weights from a fixed seed, a byte-level vocabulary of 256 byte tokens
besides <unk>, <s> and </s>, and a chat template), a few hundred kilobytes that load in
well under a second. The model says nothing sensible, and that is what the tests want:
its random bytes include the ones that end inside a UTF-8 character, the case where
llama.cpp's servers send chunks with empty content.

The engine lives in a virtualenv of its own (its fastapi, pydantic-settings and
sse-starlette must never change the project's), made by ``.ci/run``, which sets
``SHOWCASE_ENGINE_PYTHON`` to its python. ``gguf`` is installed there too, so the model is
written by that python (``python tests/engine.py write PATH``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ENGINE_PYTHON_ENV = "SHOWCASE_ENGINE_PYTHON"
MODEL_ALIAS = "tiny-llama"
VOCAB_SPECIAL = ("<unk>", "<s>", "</s>")
N_VOCAB = len(VOCAB_SPECIAL) + 256
N_EMBD, N_FF, N_HEAD, N_LAYER, N_CTX = 64, 128, 4, 2, 512
# Roles and turns in plain text: what llama-cpp-python renders with jinja2 before it
# tokenizes the prompt.
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n"
                 "{% endfor %}<assistant>")


def write_model(path: str | Path, seed: int = 0) -> Path:
    """Write the tiny random-weight llama GGUF to ``path`` (needs ``gguf`` and numpy)."""
    import gguf  # type: ignore[import-not-found]
    import numpy as np  # type: ignore[import-not-found]

    rng = np.random.default_rng(seed)
    path = Path(path)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("showcase-tiny-random-llama")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    tokens = [t.encode() for t in VOCAB_SPECIAL] + [f"<0x{b:02X}>".encode() for b in range(256)]
    types = ([gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
             + [gguf.TokenType.BYTE] * 256)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * N_VOCAB)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weight(*shape: int) -> object:
        return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(N_VOCAB, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", weight(N_VOCAB, N_EMBD))
    for i in range(N_LAYER):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{blk}.{name}.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_gate.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{blk}.ffn_up.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{blk}.ffn_down.weight", weight(N_EMBD, N_FF))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def engine_python() -> str:
    """The engine's python, from ``SHOWCASE_ENGINE_PYTHON``; a clear error when unset."""
    python = os.environ.get(ENGINE_PYTHON_ENV, "")
    if not python:
        raise RuntimeError(
            f"{ENGINE_PYTHON_ENV} is not set: the tests against a real engine need the python "
            "of a virtualenv with llama-cpp-python[server] and gguf installed (.ci/run makes "
            "one in .venv-engine: python3 -m venv .venv-engine && .venv-engine/bin/pip install "
            "'llama-cpp-python[server]' gguf; then export "
            f"{ENGINE_PYTHON_ENV}=$PWD/.venv-engine/bin/python)")
    if not Path(python).exists():
        raise RuntimeError(f"{ENGINE_PYTHON_ENV}={python}: no such file")
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EngineServer:
    """llama-cpp-python's OpenAI-compatible server on a free port, serving the tiny model."""

    def __init__(self, workdir: Path) -> None:
        self.python = engine_python()
        self.workdir = workdir
        self.model = workdir / "tiny-llama.gguf"
        self.log = workdir / "engine.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The OpenAI base URL, as a team's ``endpoint``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 60) -> EngineServer:
        import httpx  # here: the engine's python runs this file to write the model, without httpx

        subprocess.run([self.python, __file__, "write", str(self.model)], check=True,
                       timeout=120)
        self.port = free_port()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "llama_cpp.server", "--model", str(self.model),
                 "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
                 "--n_ctx", str(N_CTX), "--n_threads", "1", "--seed", "0", "--verbose", "False",
                 # Its default ends a stream, silently, when another request arrives: a
                 # benchmark run's concurrent requests must each be answered in turn.
                 "--interrupt_requests", "False"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        said = self.log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the engine did not start:\n{said}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "write":
        sys.exit(f"usage: {sys.argv[0]} write PATH  (writes the tiny random-weight llama GGUF)")
    print(write_model(sys.argv[2]))
