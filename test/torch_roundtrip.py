"""PyTorch both ways, run by test/pytorch.test.ts: lockstep's safetensors in both namings into PyTorch modules,
and a PyTorch nn.Sequential's state_dict back out as safetensors for `lockstep train --init`.

usage: torch_roundtrip.py LOCKSTEP_NAMES.safetensors SEQUENTIAL_NAMES.safetensors PIXELS.json OUT.safetensors
prints one JSON object: each module's probabilities for the images, and the sha256 of what it wrote.
"""
import hashlib, json, struct, sys

import numpy as np
import torch
from torch import nn


def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {name: torch.from_numpy(np.frombuffer(data, "<f4", count=int(np.prod(t["shape"])), offset=t["data_offsets"][0]).reshape(t["shape"]).copy())
            for name, t in header.items()}


def save_safetensors(state_dict, path):
    header, offset, blobs = {}, 0, []
    for name, tensor in state_dict.items():
        blob = tensor.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


class LockstepMLP(nn.Module):
    """lockstep's own naming: layers.0, layers.1, … with a ReLU between them."""

    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def sequential(sizes):
    modules = []
    for a, b in zip(sizes, sizes[1:]):
        modules += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*modules[:-1])


lockstep_names, sequential_names, pixels_path, out_path = sys.argv[1:5]
pixels = json.load(open(pixels_path))
sizes = pixels["layers"]
x = torch.tensor(pixels["images"], dtype=torch.float32) / 255

a = LockstepMLP(sizes)
a.load_state_dict(load_safetensors(lockstep_names))  # strict: every name and shape must fit
b = sequential(sizes)
b.load_state_dict(load_safetensors(sequential_names))

# Back: a PyTorch model of its own (seeded init, one SGD step), saved as nn.Sequential's state_dict.
torch.manual_seed(7)
c = sequential(sizes)
loss = nn.functional.cross_entropy(c(x), torch.tensor(pixels["labels"]))
loss.backward()
with torch.no_grad():
    for p in c.parameters():
        p -= 0.1 * p.grad
save_safetensors(c.state_dict(), out_path)

# lockstep's paramsSha256: every parameter's float32 bytes, layer by layer, the weight as [in][out], then the bias.
h = hashlib.sha256()
for layer in c:
    if isinstance(layer, nn.Linear):
        h.update(layer.weight.detach().t().contiguous().numpy().astype("<f4").tobytes())
        h.update(layer.bias.detach().numpy().astype("<f4").tobytes())

with torch.no_grad():
    print(json.dumps({
        "lockstepNames": torch.softmax(a(x), 1).tolist(),
        "sequentialNames": torch.softmax(b(x), 1).tolist(),
        "backProbabilities": torch.softmax(c(x), 1).tolist(),
        "backSha256": h.hexdigest(),
    }))
