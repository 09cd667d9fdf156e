"""bench:tables, the scikit-learn side (run by bench/tables.ts).

Writes an 80/20 split (stratified, random_state 0) of scikit-learn's digits, iris, wine and breast-cancer
as OUT/<name>-train.csv and OUT/<name>-test.csv (features f0..fN-1, then label), trains
StandardScaler + MLPClassifier with its defaults (Adam, 100 hidden, batch min(200, n), max_iter 200) on
each split for each seed, and prints one JSON object: {name: {"rows": [train, test], "acc": [per seed]}}.

Usage: python3 bench/tables.py OUT SEEDS
"""
import json
import sys
import warnings

from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

LOADERS = {"digits": load_digits, "iris": load_iris, "wine": load_wine, "breast-cancer": load_breast_cancer}


def write_csv(path, x, y):
    with open(path, "w") as f:
        f.write(",".join([f"f{i}" for i in range(x.shape[1])] + ["label"]) + "\n")
        for row, label in zip(x, y):
            # repr of a float64 round-trips exactly: lockstep reads the same numbers scikit-learn trains on.
            f.write(",".join(repr(float(v)) for v in row) + f",{int(label)}\n")


def main():
    out, seeds = sys.argv[1], int(sys.argv[2])
    # max_iter 200 stops some runs before the loss settles: that is the default being measured, not a fault.
    warnings.simplefilter("ignore", ConvergenceWarning)
    results = {}
    for name, load in LOADERS.items():
        x, y = load(return_X_y=True)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
        write_csv(f"{out}/{name}-train.csv", x_train, y_train)
        write_csv(f"{out}/{name}-test.csv", x_test, y_test)
        acc = []
        for seed in range(seeds):
            model = make_pipeline(StandardScaler(), MLPClassifier(random_state=seed))
            model.fit(x_train, y_train)
            acc.append(float(model.score(x_test, y_test)))
        results[name] = {"rows": [len(y_train), len(y_test)], "acc": acc}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
