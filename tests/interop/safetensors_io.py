"""The safetensors format, float32 only, written out by hand (torch 1.13 has no safetensors package).

A file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to
{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (offsets into the data that follows the header) plus an
optional "__metadata__" object of strings, then the raw little-endian data. The header is padded with spaces to a
multiple of 8 bytes so the data is aligned, as the reference implementation does.
"""

import json
import os
import struct

import numpy as np

_F32 = np.dtype("<f4")


def write(path, tensors, metadata=None):
    """Writes {name: float32 array} in name order; the file is complete or not there (temporary file, then rename)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name], dtype=_F32)
        blob = array.tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    temporary = path + ".tmp"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(temporary, path)


def read(path):
    """Returns ({name: float32 array}, metadata); refuses anything but F32 tensors that tile the data exactly."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a safetensors file")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError(f"{path}: the header length {length} runs past the end of the file")
    header = json.loads(data[8:8 + length].decode("utf-8"))
    body = data[8 + length:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    covered = 0
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {entry['dtype']}, only F32 is read")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if not 0 <= begin <= end <= len(body) or end - begin != 4 * int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor {name} has offsets {begin}..{end} that do not fit its shape {shape}")
        tensors[name] = np.frombuffer(body, dtype=_F32, count=(end - begin) // 4, offset=begin).reshape(shape).copy()
        covered += end - begin
    if covered != len(body):
        raise ValueError(f"{path}: the tensors cover {covered} bytes of the {len(body)} after the header")
    return tensors, metadata
