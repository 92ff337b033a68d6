"""Transfer on hard Fashion-MNIST pairs (issue 18's yardstick): graft's recipe against the fair
scratch baseline and against the Hands-On ML recipe replayed on the same images, over seeds.

    .venv/bin/python bench/hard_pairs.py [project_root] [--pairs shirt_tshirt,pullover_coat,sandal_shirt]
        [--seeds 3] [--variant NAME=JSON ...] [--folders DIR] [--out reports/hard_pairs/hard_pairs.json]

Per pair (two target classes; the source task is the other 8 classes, as for the default task),
per seed, from Debian's Fashion-MNIST (graft.data.fashion_mnist, the ingest stage's reader):

- target data: of each class's 6,000 training images, a seeded draw of 1,000 for validation and
  100 labelled for training (the rest is the unlabelled pool, read only by self-training); test: the official
  1,000 test images per class, the same for every seed and recipe, so every pair of recipes is
  compared on the same images (exact McNemar, graft.evaluate.lift);
- model A: the project's compact CNN pretrained on the 8 source classes with params.yaml's
  ``pretrain:`` recipe and this seed (graft.model.build, graft.train.fit: pretrain's own calls on
  arrays instead of a folder);
- graft: the advisor's measurements and choice (graft.strategy, the ``advise`` stage's code), the
  head phase on cached features and fine-tuning of ``finetune.unfreeze`` (graft.train.recipe,
  the stages' code), and the advisor's pick when it is another plan;
- scratch: the ``scratch`` stage's fair baseline (same network, random weights, same images);
- homl: Hands-On ML ch. 11 (2nd edition's notebook): model A a dense network (Flatten, 3 x
  Dense(100, ReLU, He init), softmax) trained 20 epochs with SGD at lr 1e-3 on the same source
  images; model B on A: A's hidden layers cloned, a new output layer, 4 epochs frozen at lr 1e-3,
  then 16 epochs unfrozen at lr 1e-4, batch 32; homl_scratch: the book's model B, the same dense
  network from random weights, 20 epochs at lr 1e-3. The book feeds pixels / 255 and a sigmoid
  output; here a 2-way softmax, the same model for two classes.

``--variant NAME=JSON`` adds a recipe: params.yaml with JSON's changes (nested sections, as
params.yaml has them), e.g. ``wide='{"base": {"filters": [32, 64, 128]}}'``; model A is
pretrained again when the changes touch it. ``"pseudo_threshold": 0.95`` in JSON (not a params
key) adds one round of self-training on the unlabelled pool (:func:`self_train`). Results
accumulate in ``--out`` (a stopped bench resumes); ``--summarize-only`` prints the table of
what is there. ``--folders DIR`` also writes each pair in the layout of a user's folder
(``DIR/<pair>/{train,test}/<class>/*.png``, every training image; set ``data.target: folder``
and ``paths.target`` to it to run the pipeline).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import graft  # noqa: F401  (telemetry off)
from graft import config
from graft.data import fashion_mnist
from graft.data.ingest import write_pngs
from graft.evaluate.lift import mcnemar_p
from graft.evaluate.metrics import wilson_interval
from graft.model.build import build_source_model
from graft.model.tta import with_tta
from graft.strategy import advisor as advise
from graft.strategy.measure import measure, random_features
from graft.strategy.plan import plan_for
from graft.train.features import compute, why_not_cached
from graft.train.fit import fit, seed_everything
from graft.train.pretrain import holdout
from graft.train.recipe import train_scratch, transfer

sys.path.insert(0, str(Path(__file__).parent))
from stage_times import machine  # noqa: E402

PAIRS = {"shirt_tshirt": ("Shirt", "T-shirt_top"), "pullover_coat": ("Pullover", "Coat"),
         "sandal_shirt": ("Sandal", "Shirt")}  # the last is the default task, saturated: a check, not a yardstick
VALID_PER_CLASS, TRAIN_PER_CLASS = 1000, 100
PRETRAIN_KEYS = ("seed", "image", "base", "pretrain", "precision")  # what model A depends on


def task(fm, pair: str, *, seed: int) -> dict:
    """Source and target arrays of ``pair`` for ``seed`` (uint8 NHWC, int32 labels)."""
    targets = PAIRS[pair]
    sources = [c for c in fashion_mnist.CLASSES if c not in targets]

    def take(images, labels, classes, idx_by_class):
        idx = np.concatenate([idx_by_class[c] for c in classes])
        y = np.concatenate([np.full(len(idx_by_class[c]), k, np.int32) for k, c in enumerate(classes)])
        return images[idx][..., None], y

    def members(labels, c):
        return np.flatnonzero(labels == fashion_mnist.CLASSES.index(c))

    rng = np.random.default_rng(seed)
    drawn = {c: rng.permutation(members(fm.train_labels, c)) for c in targets}
    return {
        "source_classes": sources, "target_classes": list(targets),
        "source_train": take(fm.train_images, fm.train_labels, sources, {c: members(fm.train_labels, c) for c in sources}),
        "source_test": take(fm.test_images, fm.test_labels, sources, {c: members(fm.test_labels, c) for c in sources}),
        "valid": take(fm.train_images, fm.train_labels, targets, {c: np.sort(drawn[c][:VALID_PER_CLASS]) for c in targets}),
        "train": take(fm.train_images, fm.train_labels, targets,
                      {c: np.sort(drawn[c][VALID_PER_CLASS:VALID_PER_CLASS + TRAIN_PER_CLASS]) for c in targets}),
        "test": take(fm.test_images, fm.test_labels, targets, {c: members(fm.test_labels, c) for c in targets}),
        "pool": take(fm.train_images, fm.train_labels, targets,  # unlabelled: its labels are never read
                     {c: np.sort(drawn[c][VALID_PER_CLASS + TRAIN_PER_CLASS:]) for c in targets})[0],
    }


def correct(model, test) -> np.ndarray:
    return model.predict(test[0], batch_size=256, verbose=0).argmax(1) == test[1]


def pretrain_cnn(params, data) -> tuple[object, dict]:
    """Model A as the pretrain stage trains it (graft.train.pretrain.pretrain_supervised's calls)."""
    seed_everything(params.seed)
    source = build_source_model(params)
    x, y = data["source_train"]
    fit_idx, val_idx = holdout(len(y), fraction=params.pretrain.valid_fraction, seed=params.seed)
    start = time.perf_counter()
    result = fit(source, train=(x[fit_idx], y[fit_idx]), valid=(x[val_idx], y[val_idx]), recipe=params.pretrain,
                 seed=params.seed)
    return source, {"source_test_accuracy": float(correct(source, data["source_test"]).mean()),
                    "best_epoch": result.best_epoch, "seconds": round(time.perf_counter() - start, 1)}


def cached_model_a(params, data, *, cache: Path, pair: str, key: str) -> tuple[object, dict]:
    """Model A of ``pair`` for the pretrain-relevant params ``key``, pretrained once across bench runs."""
    import hashlib

    from graft.model.saved import load, save

    path = cache / f"{pair}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.keras"
    if path.is_file():
        return load(path), json.loads(path.with_suffix(".json").read_text())
    source, record = pretrain_cnn(params, data)
    cache.mkdir(parents=True, exist_ok=True)
    save(source, path)
    path.with_suffix(".json").write_text(json.dumps(record))
    return source, record


def homl(data, *, seed: int) -> dict[str, np.ndarray]:
    """Hands-On ML's recipe on the same images: per-image test correctness of model B on A and of
    the book's model B (the dense network from random weights)."""
    import keras

    def dense(outputs: int):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                                 *[keras.layers.Dense(100, activation="relu", kernel_initializer="he_normal")
                                   for _ in range(3)], keras.layers.Dense(outputs, activation="softmax")])

    def train(model, lr, epochs, part):
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="sparse_categorical_crossentropy")
        model.fit(*data[part], epochs=epochs, batch_size=32, validation_data=data["valid"] if part == "train" else None,
                  verbose=0)

    model_a = dense(len(data["source_classes"]))
    train(model_a, 1e-3, 20, "source_train")
    clone = keras.models.clone_model(model_a)  # A itself is never changed
    clone.set_weights(model_a.get_weights())
    model_b_on_a = keras.Sequential([keras.Input((28, 28, 1)), *clone.layers[:-1],
                                     keras.layers.Dense(len(data["target_classes"]), activation="softmax")])
    for layer in model_b_on_a.layers[:-1]:
        layer.trainable = False
    train(model_b_on_a, 1e-3, 4, "train")
    for layer in model_b_on_a.layers:
        layer.trainable = True
    train(model_b_on_a, 1e-4, 16, "train")
    model_b = dense(len(data["target_classes"]))
    train(model_b, 1e-3, 20, "train")
    return {"homl": correct(model_b_on_a, data["test"]), "homl_scratch": correct(model_b, data["test"]),
            "homl_source_test_accuracy": float(correct(model_a, data["source_test"]).mean())}


def self_train(params, data, source, *, teacher, plan, seed: int, threshold: float) -> np.ndarray:
    """One round of self-training: the teacher labels the unlabelled pool, the images it is at
    least ``threshold`` sure of (at most as many per class as the rarest class has, so the
    pseudo-labels stay balanced) join the labelled ones, and the same recipe trains a student
    from model A again. Valid and test images are never in the pool."""
    probs = teacher.predict(data["pool"], batch_size=256, verbose=0)
    label, confidence = probs.argmax(1), probs.max(1)
    sure = [np.flatnonzero((label == k) & (confidence >= threshold)) for k in range(probs.shape[1])]
    keep = min(len(s) for s in sure)
    chosen = np.sort(np.concatenate([s[np.argsort(-confidence[s], kind="stable")][:keep] for s in sure]))
    train = (np.concatenate([data["train"][0], data["pool"][chosen]]),
             np.concatenate([data["train"][1], label[chosen].astype(np.int32)]))
    print(f"hard_pairs: self-training with {len(chosen)} pseudo-labelled images ({keep} per class)", flush=True)
    features = compute(source=source, params=params, train=train, valid=data["valid"])[0] \
        if why_not_cached(params) is None else None
    result = transfer(params=params, plan=plan, source=source, train=train, valid=data["valid"], seed=seed,
                      features=features)
    return correct(result.final, data["test"])


def graft_recipes(params, data, source, *, seed: int, pseudo: float | None) -> tuple[dict[str, np.ndarray], dict]:
    """graft's recipe (head phase, fine-tuning, the advisor's pick) and the scratch baseline."""
    train, valid, test = data["train"], data["valid"], data["test"]
    features = compute(source=source, params=params, train=train, valid=valid)[0]  # the advisor's probe needs them
    cached = features if why_not_cached(params) is None else None
    m = measure(params=params, features=features.train[0], random=random_features(params, train[0], seed=seed), y=train[1])
    advised = advise.advise(config.with_changes(params, {"strategy": "auto"}), m).advised_choice
    out = {}
    for choice in dict.fromkeys(("finetune_top", advised)):
        if choice == "scratch":
            continue
        plan = plan_for(choice, top_part=params.finetune.unfreeze, top_half=params.advisor.top_half)
        result = transfer(params=params, plan=plan, source=source, train=train, valid=valid, seed=seed, features=cached)
        if choice == "finetune_top":
            out["head"] = correct(result.head, test)
        out[choice] = correct(result.final, test)
        if choice == advised:
            out["advised+tta"] = correct(with_tta(result.final, "horizontal_flip"), test)
            if pseudo is not None:
                out["pseudo"] = self_train(params, data, source, teacher=result.final, plan=plan, seed=seed, threshold=pseudo)
    scratch = train_scratch(params=params, train=train, valid=valid, seed=seed)[0]
    out["scratch"], out["scratch+tta"] = correct(scratch, test), correct(with_tta(scratch, "horizontal_flip"), test)
    out["advised"] = out[advised]
    return out, {"advised": advised, "probe_gain": m.probe_gain}


def summarize(runs: list[dict], confidence: float) -> list[dict]:
    """Per variant and pair: each recipe's mean, std and a Wilson interval of the pooled test
    images; graft's lift over scratch and homl with the exact McNemar test on the pooled pairs."""
    rows = []
    for key in sorted({(r["variant"], r["pair"]) for r in runs}, key=lambda k: (k[1], k[0] != "default", k[0])):
        group = [r for r in runs if (r["variant"], r["pair"]) == key]
        row = {"variant": key[0], "pair": key[1], "seeds": [r["seed"] for r in group],
               "source_test_accuracy": statistics.fmean(r["model_a"]["source_test_accuracy"] for r in group),
               "picks": [r["advised"] for r in group]}
        # the advisor's pick may differ by seed, so only recipes every seed ran are averaged
        for name in [n for n in group[0]["correct"] if all(n in r["correct"] for r in group)]:
            per_seed = [float(np.mean(r["correct"][name])) for r in group]
            hits, n = sum(int(np.sum(r["correct"][name])) for r in group), sum(len(r["correct"][name]) for r in group)
            row[name] = {"mean": statistics.fmean(per_seed), "std": statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0,
                         "interval": wilson_interval(successes=hits, trials=n, confidence=confidence), "runs": per_seed}
        for key, a, b in (("over_scratch", "advised", "scratch"), ("over_homl", "advised", "homl"),
                          ("pseudo_over_advised", "pseudo", "advised"), ("tta_over_scratch", "advised+tta", "scratch"),
                          ("tta_over_scratch_tta", "advised+tta", "scratch+tta")):
            if a not in row:
                continue
            ours = np.concatenate([r["correct"][a] for r in group]).astype(bool)
            theirs = np.concatenate([r["correct"][b] for r in group]).astype(bool)
            row[key] = {"points": (row[a]["mean"] - row[b]["mean"]) * 100,
                        "p_value": mcnemar_p(first_only=int((ours & ~theirs).sum()), second_only=int((~ours & theirs).sum()))}
        rows.append(row)
    return rows


COLUMNS = ("head", "finetune_top", "finetune_all", "advised", "advised+tta", "pseudo", "scratch", "scratch+tta", "homl",
           "homl_scratch")
SHARED = ("scratch", "scratch+tta", "homl", "homl_scratch")  # the same for every variant of a pair


def markdown(rows: list[dict], confidence: float) -> str:
    """Two tables: every recipe's test accuracy per seed (task x variant x recipe x seed) with
    mean, standard deviation and the Wilson interval of all seeds' test images together; then
    per variant graft's lift over scratch and over the Hands-On ML replay with McNemar's p."""
    seeds = sorted({s for r in rows for s in r["seeds"]})
    head = ("| pair | variant | recipe | model A (source test) | " + " | ".join(f"seed {s}" for s in seeds)
            + f" | mean | std | {confidence:.0%} interval |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    shown = set()  # a recipe another variant shares (scratch, or the teacher of self-training) is shown once
    for r in rows:
        for c in COLUMNS:
            if c not in r or (r["pair"], c, tuple(r[c]["runs"])) in shown:
                continue
            shown.add((r["pair"], c, tuple(r[c]["runs"])))
            per_seed = dict(zip(r["seeds"], r[c]["runs"], strict=True))
            low, high = r[c]["interval"]
            source = "" if c.startswith(("homl", "scratch")) else f"{r['source_test_accuracy']:.2%}"
            lines.append(f"| {r['pair']} | {'' if c in SHARED else r['variant']} | {c} | {source} | "
                         + " | ".join(f"{per_seed[s]:.2%}" if s in per_seed else "" for s in seeds)
                         + f" | {r[c]['mean']:.2%} | {r[c]['std'] * 100:.2f} | {low:.2%} to {high:.2%} |")
    lines += ["", "| pair | variant | advisor picked (per seed) | graft - scratch, points (McNemar p) | "
              "graft - Hands-On ML replay (p) | self-training - graft (p) | graft with flip TTA - scratch (p) | "
              "both with flip TTA (p) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['pair']} | {r['variant']} | {', '.join(r['picks'])} | "
                     + " | ".join(f"{r[k]['points']:+.2f} ({r[k]['p_value']:.2g})" if k in r else ""
                                  for k in ("over_scratch", "over_homl", "pseudo_over_advised", "tta_over_scratch",
                                            "tta_over_scratch_tta")) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".")
    parser.add_argument("--pairs", default="shirt_tshirt,pullover_coat")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--no-default", action="store_true", help="only the --variant recipes")
    parser.add_argument("--folders", type=Path, default=None)
    parser.add_argument("--out", default="reports/hard_pairs/hard_pairs.json")
    parser.add_argument("--summarize-only", action="store_true")
    parser.add_argument("--include", action="append", default=[], type=Path, metavar="JSON",
                        help="also summarize the runs of another --out (e.g. one pair per process)")
    args = parser.parse_args()
    os.chdir(args.root)
    base = config.load()
    variants = {} if args.no_default else {"default": {}}
    variants.update({v.split("=", 1)[0]: json.loads(v.split("=", 1)[1]) for v in args.variant})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stored = json.loads(out.read_text()) if out.is_file() else {}
    runs, meta = stored.get("runs", []), stored.get("meta", {})
    done = {(r["variant"], r["pair"], r["seed"]) for r in runs}
    started = datetime.datetime.now().astimezone()
    if not args.summarize_only:
        meta.setdefault("variants", {}).update(variants)
        meta.setdefault("sessions", []).append({"machine": machine(), "started": started.isoformat(timespec="seconds"),
                                                "load_average_start": os.getloadavg()})
    fm = None if args.summarize_only else fashion_mnist.load(base.data.fashion_mnist_dir)
    for pair in [] if args.summarize_only else args.pairs.split(","):
        if args.folders:
            data = task(fm, pair, seed=base.seed)
            for split, images, labels in (("train", fm.train_images, fm.train_labels),
                                          ("test", fm.test_images, fm.test_labels)):
                write_pngs(images=images, labels=labels, split=split, classes=data["target_classes"],
                           out=args.folders / pair, per_class=None)
        for seed in (base.seed + i for i in range(args.seeds)):
            data, models_a = task(fm, pair, seed=seed), {}
            homl_result = None
            for name, changes in variants.items():
                if (name, pair, seed) in done:
                    continue
                params = config.with_changes(base, {**{k: v for k, v in changes.items() if k != "pseudo_threshold"},
                                                    "seed": seed, "strategy": "auto", "data": {
                    **changes.get("data", {}), "source_classes": data["source_classes"],
                    "target_classes": data["target_classes"]}})
                start = time.perf_counter()
                a_key = json.dumps([params.model_dump(mode="json")[k] for k in PRETRAIN_KEYS], sort_keys=True)
                if a_key not in models_a:
                    models_a[a_key] = cached_model_a(params, data, cache=out.parent / "models", pair=pair, key=a_key)
                source, model_a = models_a[a_key]
                scores, advice = graft_recipes(params, data, source, seed=seed, pseudo=changes.get("pseudo_threshold"))
                if homl_result is None:  # the same for every variant: from an earlier run when there is one
                    earlier = next((r for r in runs if (r["pair"], r["seed"]) == (pair, seed)), None)
                    homl_result = homl(data, seed=seed) if earlier is None else {
                        "homl_source_test_accuracy": earlier["homl_source_test_accuracy"],
                        **{k: np.array(earlier["correct"][k], bool) for k in ("homl", "homl_scratch")}}
                scores.update({k: v for k, v in homl_result.items() if k.startswith("homl") and "source" not in k})
                run = {"variant": name, "pair": pair, "seed": seed, "model_a": model_a, **advice,
                       "homl_source_test_accuracy": homl_result["homl_source_test_accuracy"],
                       "correct": {k: v.astype(int).tolist() for k, v in scores.items()},
                       "seconds": round(time.perf_counter() - start, 1)}
                runs.append(run)
                print(f"hard_pairs: {pair} {name} seed {seed}: model A {model_a['source_test_accuracy']:.4f}, advised "
                      f"{advice['advised']}; " + ", ".join(f"{k} {np.mean(v):.4f}" for k, v in scores.items())
                      + f" [{run['seconds']} s]", flush=True)
                meta["sessions"][-1]["load_average_end"] = os.getloadavg()
                out.write_text(json.dumps({"meta": meta, "runs": runs}))
    ours = {(r["variant"], r["pair"], r["seed"]) for r in runs}
    included = [r for other in args.include for r in json.loads(other.read_text())["runs"]
                if (r["variant"], r["pair"], r["seed"]) not in ours]
    rows = summarize(runs + included, base.evaluate.confidence)
    out.write_text(json.dumps({"meta": meta, "summary": rows, "runs": runs}))
    print(markdown(rows, base.evaluate.confidence))
    if not args.summarize_only:
        print(f"\n{json.dumps(meta['sessions'][-1])}; {out}")


if __name__ == "__main__":
    main()
