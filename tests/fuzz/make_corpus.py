#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into tests/fuzz/corpus/TARGET/: small valid files (afl mutates them;
small keeps it fast). Standard library only. Run from anywhere: /usr/bin/python3 tests/fuzz/make_corpus.py"""
import gzip, hashlib, io, json, os, struct, zipfile

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data)


def idx(magic, dims, data):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


images = idx(0x803, [2, 3, 3], range(18))
put("idx", "two-3x3", images)
put("idx", "one-1x1", idx(0x803, [1, 1, 1], [7]))
put("idx-gz", "two-3x3.gz", gzip.compress(images, mtime=0))
put("idx-labels", "three", idx(0x801, [3], [0, 9, 4]))
put("cifar100", "one-record", bytes([3, 42]) + bytes(i % 251 for i in range(3072)))

config = {"model": {"arch": "wrn-10-1", "block": "S", "block_type": "basic", "in_channels": 1, "classes": 10, "image": 12},
          "dataset": "fashion-mnist", "train_subset": 100, "epochs": 2, "batch_size": 50, "learning_rate": 0.1, "momentum": 0.9,
          "weight_decay": 0.0005, "schedule": "step", "lr_decay": 0.2, "nesterov": False, "augment": True, "seed": 0,
          "deterministic": False, "device": "cpu", "normalization": {"mean": [0.53], "std": [0.23]}, "mode": "none"}
config_json = json.dumps(config, separators=(",", ":"))
put("config", "config.json", config_json.encode())

metric = {"epoch": 1, "learning_rate": 0.1, "loss": 2.3, "ce": 2.3, "train_accuracy": 0.09, "test_loss": 2.2,
          "test_accuracy": 0.1, "images_per_second": 468.5, "seconds": 0.29}
put("metrics", "two-lines", (json.dumps(metric) + "\n" + json.dumps(dict(metric, epoch=2, kd="NaN")) + "\n").encode())


def safetensors(tensors, metadata):
    data = b"".join(struct.pack("<%df" % len(v), *v) for _, _, v in tensors)
    header, offset = {"__metadata__": dict(metadata, data_sha256=hashlib.sha256(data).hexdigest())}, 0
    for name, shape, values in tensors:
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * len(values)]}
        offset += 4 * len(values)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


metadata = {"format": "cheapconv-checkpoint", "format_version": "2", "content": "weights", "config": config_json, "epoch": "1",
            "best_accuracy": "0.5", "best_epoch": "1", "data_seed": "0", "last_metrics": json.dumps(metric, separators=(",", ":"))}
put("safetensors", "checkpoint", safetensors([("fc.bias", [2], [0.5, -1.0]), ("fc.weight", [2, 1], [1.0, 2.0])], metadata))
put("safetensors", "plain", safetensors([("w", [1, 2], [1.0, 2.0])], {}))


def npy(descr, shape, raw):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, tuple(shape))  # (2,) () (1, 2): NumPy's own
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + raw


a = npy("<f4", [2], struct.pack("<2f", 1.5, -2.0))
b = npy("<i8", [1, 2], struct.pack("<2q", 3, -4))
put("npy", "f4", a)
put("npy", "f8-scalar", npy("<f8", [], struct.pack("<d", 0.25)))
for name, mode in (("stored.npz", zipfile.ZIP_STORED), ("deflated.npz", zipfile.ZIP_DEFLATED)):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", mode) as z:
        for entry, content in (("a.npy", a), ("b.npy", b)):
            info = zipfile.ZipInfo(entry, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = mode
            z.writestr(info, content)
    put("npz", name, buffer.getvalue())
