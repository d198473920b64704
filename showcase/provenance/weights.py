"""A model's weights as files on disk: safetensors (one file, several, or shards listed in
``model.safetensors.index.json``), with ``config.json`` and ``tokenizer.json`` beside them.

Nothing here holds a model in memory. The headers are read and checked first (so a truncated
or corrupt file is named before any work starts); then each tensor is read on its own,
through the ``safetensors`` library's memory-mapped ``safe_open``, and dropped by the caller
when done. numpy has no bfloat16, so BF16 tensors (most released models) are mapped as their
raw 16-bit words and widened to float32 a chunk at a time (``float_chunks``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from safetensors import SafetensorError, safe_open

from showcase.provenance.errors import ProvenanceError

INDEX = "model.safetensors.index.json"
#: Bytes per element of each safetensors dtype this check reads.
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
            "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
#: A header larger than this is not a header: the first 8 bytes are not a safetensors file's.
MAX_HEADER = 100 * 2**20
#: Elements widened to float32 at once: big enough for BLAS speed, small beside any tensor
#: worth the name (4 MiB of float32).
CHUNK = 2**20


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """Where one tensor lies: its file, its dtype and shape as the header declares them."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    file: Path
    offset: int  # of the first byte in the file
    nbytes: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Model:
    """One model's tensors (from the headers), config and tokenizer."""

    def __init__(self, path: Path, tensors: dict[str, TensorInfo], config: dict[str, Any],
                 tokenizer: dict[str, Any] | None) -> None:
        self.path = path
        self.tensors = tensors
        self.config = config
        self.tokenizer = tokenizer

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())

    def read(self, name: str) -> NDArray[Any]:
        """The tensor's stored elements, flat (BF16 as raw uint16 words)."""
        info = self.tensors[name]
        if info.dtype not in ITEMSIZE:
            raise ProvenanceError(f"{info.file}: tensor {name} has dtype {info.dtype}, "
                                  "which this check cannot read")
        try:
            if info.dtype == "BF16" or info.dtype.startswith("F8"):
                return _raw_words(info)
            # One handle per tensor: its mapping, and the pages read through it, go when the
            # handle closes, so the check's resident memory stays near two tensors.
            with safe_open(str(info.file), framework="numpy") as handle:
                return np.ascontiguousarray(handle.get_tensor(name)).reshape(-1)
        except (SafetensorError, ValueError, TypeError, OSError) as exc:
            raise ProvenanceError(f"{info.file}: tensor {name} cannot be read: {exc}",
                                  "the file is truncated or corrupt; copy it again") from exc


def _raw_words(info: TensorInfo) -> NDArray[Any]:
    """A BF16 or FP8 tensor as its raw words, mapped from the file (numpy cannot name the
    dtype, so ``get_tensor`` refuses it) at the offset its header gives, checked on load."""
    word = np.uint16 if ITEMSIZE[info.dtype] == 2 else np.uint8
    return np.memmap(info.file, dtype=word, mode="r", offset=info.offset, shape=(info.size,))


def float_chunks(data: NDArray[Any], dtype: str, shift: float = 0.0
                 ) -> Iterator[NDArray[np.float32]]:
    """The elements less ``shift``, as float32, ``CHUNK`` at a time into one reused buffer
    (so a tensor is never widened whole; each chunk is valid until the next is made)."""
    buffer = np.empty(min(CHUNK, data.size), dtype=np.float32)
    for start in range(0, data.size, CHUNK):
        part = data[start:start + CHUNK]
        out = buffer[:part.size]
        widen_into(part, dtype, out)
        if shift:
            out -= np.float32(shift)
        yield out


def widen_into(part: NDArray[Any], dtype: str, out: NDArray[np.float32]) -> None:
    """Stored elements into ``out`` as float32 in one pass (BF16 words shifted into the
    high half of a float32: BF16 is float32's top 16 bits)."""
    if dtype == "BF16":
        words = out.view(np.uint32)
        words[:] = part  # two plain passes: 3x faster than one casting left_shift
        words <<= 16
    elif dtype.startswith("F8"):
        raise ProvenanceError(f"dtype {dtype} is not supported for correlation yet",
                              "convert the model to BF16 or F16")
    else:
        np.copyto(out, part, casting="unsafe")


def as_float32(part: NDArray[Any], dtype: str) -> NDArray[np.float32]:
    """Stored elements as a new float32 array of the same shape."""
    out = np.empty(part.shape, dtype=np.float32)
    widen_into(part, dtype, out)
    return out


def open_model(path: str | Path) -> Model:
    """Find a model's files and check every header; errors name the file and the problem."""
    root = Path(path)
    if not root.exists():
        raise ProvenanceError(f"{root}: no such file or directory")
    folder = root if root.is_dir() else root.parent
    files = _weight_files(root)
    tensors: dict[str, TensorInfo] = {}
    for file in files:
        infos = _tensor_infos(file)  # ours first: its messages say what is wrong
        _library_accepts(file)
        for info in infos:
            if info.name in tensors:
                raise ProvenanceError(f"{file}: tensor {info.name} is also in "
                                      f"{tensors[info.name].file.name}", "one model, one copy")
            tensors[info.name] = info
    _check_index(folder, tensors)
    if not tensors:
        raise ProvenanceError(f"{root}: the safetensors files hold no tensors")
    return Model(root, tensors, _json(folder / "config.json") or {},
                 _json(folder / "tokenizer.json"))


def model_files(path: str | Path) -> list[Path]:
    """Every file a check of the model at ``path`` reads, none of them opened yet: its
    safetensors files (as the index names them, or every one in the folder) and the
    index, config.json and tokenizer.json where present. A server checks each one against
    its allowed folders before the check reads any (docs/security.md)."""
    root = Path(path)
    if not root.exists():
        raise ProvenanceError(f"{root}: no such file or directory")
    files = _weight_files(root)
    if root.is_dir():
        files += [root / n for n in (INDEX, "config.json", "tokenizer.json")
                  if (root / n).exists()]
    return files


def _library_accepts(file: Path) -> None:
    """The safetensors library's own checks of a header, beyond ours."""
    try:
        with safe_open(str(file), framework="numpy"):
            pass
    except (SafetensorError, OSError) as exc:
        raise ProvenanceError(f"{file}: not a readable safetensors file: {exc}",
                              "the file is truncated or corrupt; copy it again") from exc


def _weight_files(root: Path) -> list[Path]:
    if root.is_file():
        if root.suffix != ".safetensors":
            raise ProvenanceError(f"{root}: not a .safetensors file")
        return [root]
    index = _json(root / INDEX)
    if index is not None:
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ProvenanceError(f"{root / INDEX}: has no weight_map")
        files = [root / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ProvenanceError(f"{root / INDEX} names {', '.join(missing)}, which "
                                  f"{'is' if len(missing) == 1 else 'are'} missing",
                                  "copy every shard of the model")
        return files
    files = sorted(root.glob("*.safetensors"))
    if not files:
        raise ProvenanceError(f"{root}: no .safetensors file in this folder")
    return files


def _check_index(folder: Path, tensors: dict[str, TensorInfo]) -> None:
    index = _json(folder / INDEX) if folder.is_dir() else None
    for name, shard in ((index or {}).get("weight_map") or {}).items():
        if name not in tensors or tensors[name].file.name != shard:
            raise ProvenanceError(f"{folder / INDEX}: says {name} is in {shard}, which has "
                                  "no such tensor", "the index and the shards disagree")


def _header(file: Path) -> tuple[int, dict[str, Any]]:
    size = file.stat().st_size
    with file.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ProvenanceError(f"{file}: not a safetensors file (only {size} bytes)",
                                  "the file is truncated; copy it again")
        header_len = struct.unpack("<Q", head)[0]
        if header_len > min(size - 8, MAX_HEADER):
            raise ProvenanceError(f"{file}: not a safetensors file (its first 8 bytes give "
                                  f"a header of {header_len} bytes; the file has {size})",
                                  "the file is truncated or corrupt; copy it again")
        try:
            header = orjson.loads(f.read(header_len))
        except orjson.JSONDecodeError as exc:
            raise ProvenanceError(f"{file}: corrupt: its header is not JSON ({exc})",
                                  "copy the file again") from exc
    if not isinstance(header, dict):
        raise ProvenanceError(f"{file}: corrupt: its header is not a JSON object")
    return header_len, header


def _tensor_infos(file: Path) -> list[TensorInfo]:
    header_len, header = _header(file)
    size = file.stat().st_size
    infos = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = entry["dtype"], tuple(entry["shape"]), \
                entry["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProvenanceError(f"{file}: corrupt: the header's entry for {name} lacks "
                                  "dtype, shape or data_offsets") from exc
        itemsize = ITEMSIZE.get(dtype, 0)
        if itemsize and end - start != math.prod(shape) * itemsize:
            raise ProvenanceError(f"{file}: corrupt: {name} is {dtype} {list(shape)} but "
                                  f"spans {end - start} bytes")
        if 8 + header_len + end > size:
            raise ProvenanceError(f"{file} is truncated: {name} ends at byte "
                                  f"{8 + header_len + end}, the file has {size}",
                                  "copy the file again")
        infos.append(TensorInfo(name, shape, dtype, file, 8 + header_len + start, end - start))
    return infos


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ProvenanceError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ProvenanceError(f"{path}: not a JSON object")
    return data
