"""The provenance check on models of a realistic size (issue 18's goals).

Two Llama-shaped BF16 models of about ``--gib`` GiB each (hidden 2048, intermediate 5632,
32,000 tokens, as many layers as the size takes), B a fine-tune of A, written one tensor at
a time to ``--dir`` (not timed). Then, each ``--runs`` times, in turns:

  read    both models' files read start to end from the page cache (16 MiB reads into one
          buffer): the floor any check that looks at every byte has to stand on
  sha256  both files hashed from the page cache (hashlib): the floor under any check that
          hashes every tensor, as this one must
  screen  ``check(A, B, permutation=False)`` in a fresh process, imports not timed: hashes,
          sums, cosine and Pearson of every matched pair and of the unmatched null pairs
  full    ``check(A, B)``, the same plus the permutation test (what ``showcase provenance``
          runs)
  peak    each check's peak resident memory (VmHWM, which counts the memory-mapped pages
          of the files it has touched) less its resident memory after its imports; beside
          it, the largest tensor's stored size

Goals: screen at >= 0.5x the speed of read; peak <= 2x the largest tensor.

Then the permutation test on one MLP layer the size of Llama-7B's (up 11008x4096, down
4096x11008, float32), B a reordered fine-tune of A and then an independent draw: the
intermediate units of both matrices matched with the Hungarian algorithm and the rank test
(goal <= 10 s).

    .venv/bin/python benchmarks/bench_provenance.py [--gib 1] [--runs 3] [--dir /tmp/...]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _common import describe, machine, stop_on_sigterm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from showcase.provenance import stats as st
from showcase.provenance.weights import TensorInfo, open_model
from tests.provenance_models import stream_bf16

HIDDEN, INTER, VOCAB = 2048, 5632, 32000


def shapes(gib: float) -> dict[str, tuple[int, ...]]:
    per_layer = 2 * (4 * HIDDEN * HIDDEN + 3 * HIDDEN * INTER + 2 * HIDDEN)
    fixed = 2 * (2 * VOCAB * HIDDEN + HIDDEN)
    layers = max(1, round((gib * 2**30 - fixed) / per_layer))
    out: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (VOCAB, HIDDEN)}
    for n in range(layers):
        p = f"model.layers.{n}."
        out |= {p + "input_layernorm.weight": (HIDDEN,),
                p + "post_attention_layernorm.weight": (HIDDEN,)}
        out |= {p + f"self_attn.{x}_proj.weight": (HIDDEN, HIDDEN) for x in "qkvo"}
        out |= {p + "mlp.gate_proj.weight": (INTER, HIDDEN), p + "mlp.up_proj.weight":
                (INTER, HIDDEN), p + "mlp.down_proj.weight": (HIDDEN, INTER)}
    return out | {"model.norm.weight": (HIDDEN,), "lm_head.weight": (VOCAB, HIDDEN)}


def tensor(name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if len(shape) == 1:
        return (1 + 0.1 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    return rng.standard_normal(shape, dtype=np.float32) / np.float32(np.sqrt(shape[1]))


def write_models(folder: Path, gib: float) -> tuple[Path, Path]:
    sh = shapes(gib)
    a, b = folder / "a", folder / "b"
    for path in (a, b):
        path.mkdir(parents=True, exist_ok=True)
    if not (a / "model.safetensors").exists():
        stream_bf16(a / "model.safetensors", sh, lambda k: tensor(k, sh[k], 1))
    if not (b / "model.safetensors").exists():
        def fine_tuned(k: str) -> np.ndarray:
            base = tensor(k, sh[k], 1)
            return base + np.float32(0.1 * base.std()) * tensor(k, sh[k], 2)
        stream_bf16(b / "model.safetensors", sh, fine_tuned)
    return a, b


def read_files(paths: list[Path]) -> float:
    buf = bytearray(16 * 2**20)
    t = time.perf_counter()
    for path in paths:
        with path.open("rb", buffering=0) as f:
            while f.readinto(buf):
                pass
    return time.perf_counter() - t


CHILD = """
import sys, time
from pathlib import Path
from showcase.provenance.check import check
def status(key):
    return int(next(l for l in Path('/proc/self/status').read_text().splitlines()
                    if l.startswith(key)).split()[1])
before = status('VmRSS')
t = time.perf_counter()
report = check(sys.argv[1], sys.argv[2], permutation=sys.argv[3] == 'full')
took = time.perf_counter() - t
print(took, before, status('VmHWM'), ' '.join(c.verdict for c in report.components))
"""


def run_check(a: Path, b: Path, mode: str) -> tuple[float, float, list[str]]:
    """The check in a fresh process: its seconds (imports excluded) and its peak resident
    memory (VmHWM, mapped file pages included) above its resident memory after the
    imports, in bytes."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(a), str(b), mode],
                         capture_output=True, text=True, check=True, timeout=3600).stdout.split()
    took, before, peak = float(out[0]), int(out[1]), int(out[2])
    return took, (peak - before) * 1024.0, out[3:]


def hash_files(paths: list[Path]) -> float:
    """SHA-256 of both files from the page cache: the floor under any check that hashes."""
    t = time.perf_counter()
    for path in paths:
        with path.open("rb", buffering=0) as f:
            digest = hashlib.sha256()
            while chunk := f.read(16 * 2**20):
                digest.update(chunk)
    return time.perf_counter() - t


def permutation_layer(independent: bool) -> float:
    """One Llama-7B-sized MLP layer: seconds to match both matrices' units and rank-test."""
    rng = np.random.default_rng(5)
    up = rng.standard_normal((11008, 4096), dtype=np.float32)
    down = rng.standard_normal((4096, 11008), dtype=np.float32)
    if independent:
        up_b = rng.standard_normal((11008, 4096), dtype=np.float32)
        down_b = rng.standard_normal((4096, 11008), dtype=np.float32)
    else:
        order = rng.permutation(11008)
        up_b = up[order] + np.float32(0.1) * rng.standard_normal(up.shape, dtype=np.float32)
        down_b = down[:, order] + np.float32(0.1) * rng.standard_normal(down.shape,
                                                                         dtype=np.float32)
    with ThreadPoolExecutor(1) as hasher:
        pieces = [_loaded(n, m, hasher) for n, m in (("up", up), ("up_b", up_b),
                                                     ("down", down), ("down_b", down_b))]
    hidden = st.identity_hidden(4096)
    t = time.perf_counter()
    m_up = st.match_mlp(pieces[0], pieces[1], "up", hidden)
    m_down = st.match_mlp(pieces[2], pieces[3], "down", hidden)
    result = st.layer_test(0, m_up, m_down)
    took = time.perf_counter() - t
    assert (result.p < 1e-100) != independent, result
    return took


def _loaded(name: str, m: np.ndarray, hasher: ThreadPoolExecutor) -> st.Loaded:
    info = TensorInfo(name, m.shape, "F32", Path(name), 0, m.nbytes)
    return st.Loaded(info, m.reshape(-1), hasher)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0, help="size of each model (1 GiB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default="", help="where the models go (a temporary folder)")
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench-provenance-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(describe(machine(folder)))
    t = time.perf_counter()
    a, b = write_models(folder, args.gib)
    files = [a / "model.safetensors", b / "model.safetensors"]
    size = sum(f.stat().st_size for f in files)
    model = open_model(a)
    largest = max(info.nbytes for info in model.tensors.values())
    count = len(model.tensors)
    print(f"models: 2 x {size / 2 / 2**30:.2f} GiB BF16, {count} tensors each, largest "
          f"{largest / 2**20:.0f} MiB (written in {time.perf_counter() - t:.0f} s)")
    read_files(files)  # into the page cache
    timings: dict[str, list[float]] = {"read": [], "sha256": [], "screen": [], "full": []}
    peaks: dict[str, list[float]] = {"screen": [], "full": []}
    for run in range(args.runs):
        timings["read"].append(read_files(files))
        timings["sha256"].append(hash_files(files))
        line = [f"run {run + 1}: read {size / timings['read'][-1] / 2**20:,.0f} MiB/s, sha256 "
                f"{size / timings['sha256'][-1] / 2**20:,.0f} MiB/s"]
        for mode in ("screen", "full"):
            took, peak, verdicts = run_check(a, b, mode)
            timings[mode].append(took)
            peaks[mode].append(peak)
            line.append(f"{mode} {size / took / 2**20:,.0f} MiB/s ({took:.1f} s, peak "
                        f"+{peak / 2**20:,.0f} MiB, {' '.join(verdicts)})")
        print(", ".join(line), flush=True)
    read_s = statistics.median(timings["read"])
    for what in ("sha256", "screen", "full"):
        took = statistics.median(timings[what])
        peak = f"; peak +{statistics.median(peaks[what]) / 2**20:,.0f} MiB = " \
            f"{statistics.median(peaks[what]) / largest:.2f}x the largest tensor" \
            if what in peaks else ""
        print(f"median {what}: {size / took / 2**20:,.0f} MiB/s = {read_s / took:.2f}x the "
              f"read's {size / read_s / 2**20:,.0f} MiB/s{peak}")
    for independent in (False, True):
        times = [permutation_layer(independent) for _ in range(args.runs)]
        print(f"permutation test, one 11008x4096 + 4096x11008 layer pair, "
              f"{'independent' if independent else 'reordered fine-tune'}: median "
              f"{statistics.median(times):.2f} s (runs {', '.join(f'{x:.2f}' for x in times)}; "
              "goal <= 10 s)", flush=True)
    if not args.dir:
        for f in files:
            f.unlink()


if __name__ == "__main__":
    with stop_on_sigterm():
        main()
