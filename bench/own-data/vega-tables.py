"""Three real tables from the vega-datasets npm package as CSV train/test files (docs/data.md).

    npm install --prefix /tmp/ds vega-datasets@3.2.1
    python3 bench/own-data/vega-tables.py /tmp/ds/node_modules/vega-datasets/data OUTDIR

Rows with a missing value are dropped; each table is shuffled (Python's random, seed 0) and cut 80/20.
"""
import csv, json, random, sys

src, out = sys.argv[1], sys.argv[2]


def split_write(name, header, rows):
    random.Random(0).shuffle(rows)
    cut = int(len(rows) * 0.8)
    for part, chunk in (("train", rows[:cut]), ("test", rows[cut:])):
        with open(f"{out}/{name}_{part}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(chunk)
    print(name, len(rows), "rows,", len(header) - 1, "features,", len({r[-1] for r in rows}), "classes")


penguins = json.load(open(f"{src}/penguins.json"))
keys = ["Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"]
split_write("penguins", ["beak_length", "beak_depth", "flipper_length", "body_mass", "species"],
            [[r[k] for k in keys] + [r["Species"]] for r in penguins if all(r.get(k) is not None for k in keys)])

weather = list(csv.DictReader(open(f"{src}/seattle-weather.csv")))
split_write("seattle_weather", ["precipitation", "temp_max", "temp_min", "wind", "weather"],
            [[r["precipitation"], r["temp_max"], r["temp_min"], r["wind"], r["weather"]] for r in weather])

cars = json.load(open(f"{src}/cars.json"))
keys = ["Miles_per_Gallon", "Cylinders", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration", "Year"]
split_write("cars_origin", ["mpg", "cylinders", "displacement", "horsepower", "weight", "acceleration", "year", "origin"],
            [[r[k] for k in keys[:-1]] + [int(str(r["Year"])[:4]), r["Origin"]] for r in cars if all(r.get(k) is not None for k in keys)])
