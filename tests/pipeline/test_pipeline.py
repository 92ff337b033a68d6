"""Pipeline tier: a real `dvc repro` of the whole graph on tiny data (the Prefect flow's whole run, on a
user's own folder, is in test_faults.py)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import yaml

from graft.pipeline.dag import stage_order
from graft.train.history import read
from tests.helpers import BIN, dvc, env, make_project, ran, run, stages

pytestmark = pytest.mark.slow

STAGES = stages()


@pytest.fixture
def project(tiny_project):
    return tiny_project


def test_first_repro_ran_every_stage(tiny_project_first_run):
    assert ran(tiny_project_first_run) == STAGES


def test_stage_order_comes_from_dvc(project):
    order = stage_order(project)
    assert sorted(order) == sorted(STAGES) and order != STAGES  # DVC's order, not the file's
    before = {name: i for i, name in enumerate(order)}
    for stage, deps in {"validate": ["ingest"], "split": ["validate"], "pretrain": ["ingest"],
                        "features": ["pretrain", "split"],
                        "advise": ["features"], "train_head": ["features"], "finetune": ["train_head", "advise", "scratch"],
                        "scratch": ["split"], "evaluate": ["finetune", "scratch"],
                        "export": ["finetune", "evaluate"]}.items():
        assert all(before[d] < before[stage] for d in deps), (stage, order)


def test_repro_writes_every_declared_output(project):
    metrics = json.loads((project / "metrics" / "metrics.json").read_text())
    assert set(metrics) == {"head", "finetuned"}  # models only: the lift has its own record
    for phase in ("head", "finetuned"):
        assert metrics[phase]["images"] == 20  # 10 synthetic test images per target class
        assert metrics[phase]["accuracy"] == pytest.approx(1 - metrics[phase]["errors"] / 20)
    with open(project / "plots" / "confusion.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20
    assert metrics["finetuned"]["accuracy"] == pytest.approx(sum(r["actual"] == r["predicted"] for r in rows) / 20)
    assert (project / "models" / "export" / "model.onnx").stat().st_size > 0
    lift = json.loads((project / "metrics" / "lift.json").read_text())
    scratch = json.loads((project / "metrics" / "scratch.json").read_text())
    assert lift["scratch_accuracy"] == scratch["test"]["accuracy"]
    assert lift["accuracy_points"] == pytest.approx((metrics["finetuned"]["accuracy"] - scratch["test"]["accuracy"]) * 100)
    assert json.loads((project / "metrics" / "gate.json").read_text())["blessed"] is True
    for name in ("confusion.png", "learning_curves.png", "samples.png", "reliability.png", "confusion.csv",
                 "worst_errors.csv"):
        assert (project / "plots" / name).stat().st_size > 0
    shown = dvc(project, "metrics", "show", "--json").stdout
    assert "finetuned" in shown and "accuracy" in shown
    plots = dvc(project, "plots", "show", "--json").stdout
    assert "plots/confusion.csv" in plots
    experiments = dvc(project, "exp", "show", "--json").stdout
    head, fine = (json.loads((project / "metrics" / f"{n}.json").read_text()) for n in ("head", "finetune"))
    for phase, epochs in (("pretrain", None), ("head", head["epochs_run"]), ("scratch", None),
                          ("finetune", fine["epochs_run"])):
        live = project / "plots" / "live" / phase
        rows = read(live)
        assert rows and [r["step"] for r in rows] == list(range(len(rows))), phase  # DVCLive's step an epoch
        assert epochs is None or len(rows) == epochs, phase
        summary = json.loads((live / "metrics.json").read_text())
        assert summary["step"] == len(rows) - 1 and summary["eval"]["loss"] == rows[-1]["val_loss"], phase
        assert f"plots/live/{phase}/metrics.json" in shown and f"plots/live/{phase}/metrics.json" in experiments
        assert f"plots/live/{phase}/plots/metrics/eval/loss.tsv" in plots, phase
    curves = read([project / "plots" / "live" / "head", project / "plots" / "live" / "finetune"])
    assert [r["epoch"] for r in curves] == list(range(1, head["epochs_run"] + fine["epochs_run"] + 1))


def chromium_driver():
    """Headless Chromium under chromedriver (Debian's packages, never a download), logging the
    console and the network; skips where they are not installed."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (`make browser` installs them where "
                    "apt-get works); the report's browser test needs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)  # a path: no Selenium Manager


def test_the_report_is_one_self_contained_page_that_loads_with_every_section(project, tmp_path):
    """reports/report.html, written by export, in a real browser: no console error, nothing fetched
    but the page itself, every section there, every picture decoded; `graft summary` links it."""
    from selenium.webdriver.common.by import By

    from graft.evaluate.page import SECTIONS

    report = project / "reports" / "report.html"
    metrics = json.loads((project / "metrics" / "metrics.json").read_text())["finetuned"]
    browser = chromium_driver()
    try:
        browser.set_page_load_timeout(60)
        browser.get(report.as_uri())
        for key, heading in SECTIONS.items():
            assert browser.find_element(By.CSS_SELECTOR, f"section#{key} > h2").text == heading
        images = browser.execute_script("return Array.from(document.images, i => [i.alt, i.complete, i.naturalWidth])")
        assert len(images) == 4 and all(done and width > 0 for _, done, width in images), images
        scores = browser.find_element(By.ID, "scores").text
        assert f"{metrics['accuracy']:.2%}" in scores and f"{metrics['errors']}/{metrics['images']}" in scores
        assert "Model card: graft image classifier" in browser.find_element(By.CSS_SELECTOR, "#card h3").text
        assert "blessed" in browser.find_element(By.ID, "gate").text
        browser.save_screenshot(str(tmp_path / "report.png"))
        console = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        events = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
        fetched = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    finally:
        browser.quit()
    assert console == [], console
    assert [url for url in fetched if not url.startswith("data:")] == [report.as_uri()], fetched
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert report.as_uri() in run([str(BIN / "graft"), "summary"], project).stdout


def test_second_repro_reruns_nothing(project):
    out = dvc(project, "repro").stdout
    assert ran(out) == [], out


def test_changing_finetune_lr_reruns_only_what_depends_on_it(project):
    params_file = project / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["finetune"]["lr"] = params["head"]["lr"] / 20
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        assert ran(dvc(project, "repro").stdout) == ["finetune", "evaluate", "export"]
    finally:
        params_file.write_text(original)
        dvc(project, "repro")


KILL_AT_EPOCH = """
import os, signal, sys

if os.path.basename(sys.argv[0]) == "graft":  # the stage process, not DVC itself
    from graft.train.callbacks import Checkpoint

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == int(os.environ["GRAFT_TEST_KILL_AT_EPOCH"]):
            os.kill(os.getpid(), signal.SIGKILL)

    Checkpoint.on_epoch_begin = on_epoch_begin
"""


def test_head_phase_killed_during_repro_resumes_on_the_next_repro(project, tmp_path):
    """SIGKILL of `graft train_head` in the middle of `dvc repro`; the next `dvc repro train_head`
    continues from the last finished epoch, on the cached features, which a head-only change does
    not recompute."""
    import os
    import subprocess

    (tmp_path / "sitecustomize.py").write_text(KILL_AT_EPOCH)  # imported by every Python process started
    params_file = project / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["head"].update(epochs=4, dense=[8])
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        pythonpath = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))  # keep the caller's
        killed = subprocess.run([str(BIN / "dvc"), "repro", "train_head"], cwd=project, capture_output=True, text=True,
                                env={**env(), "PYTHONPATH": pythonpath, "GRAFT_TEST_KILL_AT_EPOCH": "2"}, timeout=600)
        assert killed.returncode != 0 and "Running stage 'features'" not in killed.stdout
        assert "graft train_head: error" not in killed.stderr  # killed, not stopped by an error
        assert "deleted" in dvc(project, "status", "train_head").stdout  # DVC knows it did not finish
        out = dvc(project, "repro", "train_head").stdout  # (the stages after it are not this test's point)
        assert ran(out) == ["train_head"]  # features are not recomputed
        assert "resuming from epoch 3/4" in out
        head = json.loads((project / "metrics" / "head.json").read_text())
        assert head["cached_features"] and head["resumed_from_epoch"] == 2 and head["epochs_run"] == 4
        assert [r["step"] for r in read(project / "plots" / "live" / "head")] == [0, 1, 2, 3]  # continued, not restarted
        assert not list((project / ".graft" / "backup").glob("train_head/*"))  # the state went with the phase
    finally:
        params_file.write_text(original)
        dvc(project, "repro")


def test_failed_validation_stops_the_pipeline_with_a_clear_message(tmp_path, fake_fashion_mnist):
    root = make_project(tmp_path / "project", fake_data=fake_fashion_mnist,
                        overrides={"validate": {"min_images_per_class": 1000}})
    result = dvc(root, "repro", check=False)
    assert result.returncode != 0
    assert "graft validate: error" in result.stderr and "min_images_per_class" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "data" / "split").exists()
