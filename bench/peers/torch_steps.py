"""PyTorch doing lockstep bench's SGD steps, for bench:peers' table by model size: the same layers (He-normal
init, ReLU, softmax + mean cross-entropy), plain SGD at lr 0.1, batches of BATCH MNIST rows (pixels / 255) in a
shuffled order, torch.set_num_threads(THREADS). Times STEPS steps after WARMUP, from inside (no start-up).

Usage: python torch_steps.py DATA_DIR LAYERS BATCH THREADS STEPS WARMUP   (LAYERS like 784,128,64,10)
Prints one JSON line: {"stepsPerSec", "torch", "threads"}; with --config, torch.__config__.show() instead.
"""
import json
import sys
import time

import torch

if sys.argv[1:] == ["--config"]:
    print(f"torch {torch.__version__}\n{torch.__config__.show()}")
    sys.exit(0)


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def main():
    data_dir, layers, batch, threads, steps, warmup = sys.argv[1:7]
    sizes = [int(n) for n in layers.split(",")]
    batch, threads, steps, warmup = int(batch), int(threads), int(steps), int(warmup)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = read_idx(f"{data_dir}/train-images-idx3-ubyte").reshape(-1, 784).float() / 255
    y = read_idx(f"{data_dir}/train-labels-idx1-ubyte").long()
    mods = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = torch.nn.Linear(n_in, n_out)
        torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        torch.nn.init.zeros_(lin.bias)
        mods.append(lin)
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0])
    at = 0

    def step():
        nonlocal at, order
        if at + batch > x.shape[0]:
            order, at = torch.randperm(x.shape[0]), 0
        idx = order[at : at + batch]
        at += batch
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - t0
    print(json.dumps({"stepsPerSec": steps / seconds, "torch": torch.__version__, "threads": torch.get_num_threads()}))


main()
