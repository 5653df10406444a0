"""`make ui` serves the MLflow UI; headless Chromium sees the experiment, a run's metrics, the champion, the
model card and the champion's monitoring.

A tiny model is trained and registered into a temporary SQLite store, `make ui` serves that store
(UI_STORE, UI_PORT), and the Debian chromium, driven through the Debian chromedriver, opens the
experiment's runs, the run's metrics, the registered model and its version's page, where the card is
read as the browser rendered it. The champion is then monitored for real (`sentipipe predict --input` with
the log on, `sentipipe feedback`, `sentipipe monitor`), and the browser finds its monitoring where a reader
of the champion looks: the monitor run (drift and live figures beside validation, charted by window), the
version's tags, its logged model's metrics and its training run's tags. Screenshots of the pages are kept
in test-artifacts/mlflow-ui-*.png at the repository root (git-ignored), also when a page fails.
Needs chromium and chromium-driver: `make test` (.ci/services.sh) installs them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentipipe.io import read_json
from sentipipe.stats import wilson_interval
from tests.helpers import NEGATIVE, POSITIVE, REPO, run_tiny_pipeline, tiny_raw, write_params, write_raw_corpus
from tests.servers import free_port, stop, wait_until_up

pytestmark = pytest.mark.integration

ARTIFACTS = REPO / "test-artifacts"
# Debian's chromium first; the names other distributions and CI images use after it.
CHROMIUM = os.environ.get("SENTIPIPE_CHROMIUM") or next(
    filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), "/usr/bin/chromium"
)
CHROMEDRIVER = os.environ.get("SENTIPIPE_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
INSTALL_HINT = (
    "run `make test` (.ci/services.sh), or `apt-get install -y --no-install-recommends chromium chromium-driver` "
    "(Debian packages), or name a browser and its driver in SENTIPIPE_CHROMIUM and SENTIPIPE_CHROMEDRIVER"
)
TIMEOUT = 90  # seconds for the UI to start and for each page to show what it must


def js_number(value: float) -> str:
    """A metric value the way the UI prints it (JavaScript's Number#toString)."""
    if float(value).is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(float(value)).replace("e-0", "e-").replace("e+0", "e+")


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A trained, registered tiny model in a temp store, served by `make ui`."""
    from mlflow import MlflowClient

    work = tmp_path_factory.mktemp("ui")
    store = f"sqlite:///{work / 'mlflow.db'}"
    MlflowClient(store).search_experiments()  # creates the schema: the UI below then only reads

    port = free_port()
    # The target itself, on this interpreter's environment; -o setup: the venv is already there.
    command = ["make", "-C", str(REPO), "-o", "setup", "ui", f"VENV={sys.prefix}", f"UI_STORE={store}"]
    command.append(f"UI_PORT={port}")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = work / "ui.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        # Train and register while the UI starts: both take a while.
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(work)
            mp.setenv("MLFLOW_TRACKING_URI", store)
            write_raw_corpus(work)
            params = run_tiny_pipeline()
        client = MlflowClient(store)
        experiment = client.get_experiment_by_name(params.classifier.experiment)
        (run,) = client.search_runs([experiment.experiment_id])

        reports = {
            name: read_json(work / "reports" / name) for name in ("classifier/metrics.json", "data/prepare.json")
        }
        wait_until_up(proc, f"{url}/health", "`make ui`", log, TIMEOUT)
        yield {
            "url": url,
            "work": work,
            "store": store,
            "experiment": experiment,
            "run": run,
            "model": params.classifier.register.model_name,
            "reports": reports,
        }
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def monitored(ui):
    """The champion monitored for real: `sentipipe predict --input` logs 60 texts (three windows of 20), half of
    them are labelled back with `sentipipe feedback` (three wrongly), then `sentipipe monitor` tests the windows."""
    import pandas as pd
    from mlflow import MlflowClient

    from sentipipe import cli

    work = ui["work"]
    truth = [(text, "positive") for text in POSITIVE] + [(text, "negative") for text in NEGATIVE]
    # words the model never saw: real drift (unseen words, sentence vectors) for the monitor to find
    traffic = pd.DataFrame(
        [(f"{text} seen on day {k}", label) for k in range(4) for text, label in truth][:60], columns=["text", "truth"]
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", ui["store"])
        write_params(work, tiny_raw({"monitoring": {"enabled": True, "window": 20, "min_labelled": 5}}))
        traffic.to_csv("traffic.csv", index=False)
        assert cli.main(["predict", "--input", "traffic.csv", "--output", "scored.csv"]) == 0
        labelled = pd.read_csv("scored.csv").iloc[::2].reset_index(drop=True)
        flip = {"positive": "negative", "negative": "positive"}
        labels = [flip[t] if i in (5, 12, 25) else t for i, t in enumerate(labelled["truth"])]
        pd.DataFrame({"id": labelled["log_id"], "label": labels}).to_csv("feedback.csv", index=False)
        assert cli.main(["feedback", "feedback.csv"]) == 0
        status = cli.main(["monitor"])
    report = read_json(work / "reports" / "monitoring" / "report.json")
    assert len(report["windows"]) == 3 and status == (3 if report["alarm"] else 0)
    client = MlflowClient(ui["store"])
    run = client.get_run(report["monitor_run_id"])
    version = client.get_model_version(ui["model"], "1")
    return {
        "report": report,
        "run": run,
        "experiment": client.get_experiment(run.info.experiment_id),
        "version": version,
        "model_id": version.source.removeprefix("models:/"),
    }


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Debian chromium through the Debian chromedriver; Selenium Manager never downloads."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: {INSTALL_HINT}", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver) -> str:
    return driver.execute_script("return document.body ? document.body.innerText : ''") or ""


def show(driver, url: str, name: str, patterns: list[str], scroll_to: str | None = None) -> str:
    """Open url, wait until every regex in patterns is on the page, keep a screenshot; the page text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    shot = ARTIFACTS / f"mlflow-ui-{name}.png"
    driver.get(url)
    try:
        WebDriverWait(driver, TIMEOUT, poll_frequency=0.5).until(
            lambda d: all(re.search(p, page_text(d)) for p in patterns)
        )
    except TimeoutException:
        driver.save_screenshot(str(shot))
        text = page_text(driver)
        missing = [p for p in patterns if not re.search(p, text)]
        pytest.fail(f"{url}: after {TIMEOUT} s no {missing} on the page (screenshot {shot}); it shows:\n{text[:3000]}")
    close_assistant(driver)
    if scroll_to:
        driver.execute_script(
            "const el = [...document.querySelectorAll('body *')].find("
            "  e => e.children.length === 0 && e.textContent.trim() === arguments[0]);"
            "if (el) el.scrollIntoView({block: 'center'});",
            scroll_to,
        )
    time.sleep(0.5)  # let charts and fonts settle for the screenshot
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    return page_text(driver)


def wait_for(driver, name: str, patterns: list[str]) -> str:
    """On the page already open (after typing, say), wait until every regex in patterns shows; keep a screenshot."""
    from selenium.webdriver.support.ui import WebDriverWait

    shot = ARTIFACTS / f"mlflow-ui-{name}.png"
    try:
        WebDriverWait(driver, TIMEOUT, poll_frequency=0.5).until(
            lambda d: all(re.search(p, page_text(d)) for p in patterns)
        )
    finally:
        time.sleep(0.5)
        driver.save_screenshot(str(shot))
    return page_text(driver)


def close_assistant(driver) -> None:
    """The UI opens its chat panel on first load; close it so the screenshots show the page."""
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
        if button.is_displayed():
            button.click()
            return


def test_the_experiment_lists_the_run_and_its_registered_model(browser, ui):
    experiment, run = ui["experiment"], ui["run"]
    show(
        browser,
        f"{ui['url']}/#/experiments/{experiment.experiment_id}/runs",
        "experiment",
        [re.escape(experiment.name), re.escape(run.info.run_name), "1 matching run", re.escape(ui["model"])],
    )


def test_the_run_shows_its_metrics_with_their_values(browser, ui):
    experiment, run = ui["experiment"], ui["run"]
    metrics = run.data.metrics
    assert {"val_accuracy", "val_log_loss", "test_accuracy"} <= set(metrics)
    rows = [rf"{name}\s+{re.escape(js_number(metrics[name]))}\b" for name in ("val_accuracy", "val_log_loss")]
    show(
        browser,
        f"{ui['url']}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}",
        "run",
        [re.escape(run.info.run_name), re.escape(run.info.run_id), *rows],
        scroll_to="val_accuracy",
    )


def test_the_registered_model_shows_the_champion_alias(browser, ui):
    text = show(
        browser,
        f"{ui['url']}/#/models/{ui['model']}",
        "model",
        [re.escape(ui["model"]), r"Version 1\b", r"@\s*champion"],
    )
    # no version carries the alias (the model's description names it, as in models:/NAME@challenger)
    assert not re.search(r"(?<![\w/-])@\s*challenger", text)


def test_the_version_page_shows_its_model_card_rendered(browser, ui):
    """The card as a user reads it: markdown rendered to headings and tables, figures from the reports."""
    metrics, prepare = ui["reports"]["classifier/metrics.json"], ui["reports"]["data/prepare.json"]
    rows = prepare["splits"]["test"]["rows"]
    low, high = wilson_interval(round(metrics["test"]["accuracy"] * rows), rows)
    figures = rf"this model\s+test \({rows} rows\)\s+{metrics['test']['accuracy']:.4f}\s+{low:.3f}–{high:.3f}"
    text = show(
        browser,
        f"{ui['url']}/#/models/{ui['model']}/versions/1",
        "version-card",
        [
            rf"{re.escape(ui['model'])} version 1: champion",
            r"Decision: champion",
            figures,
            r"95% interval \(Wilson\)",
            rf"T = {re.escape(format(metrics['calibration']['temperature'], 'g'))}",
            r"Intended use and limits",
        ],
        scroll_to="Figures",
    )
    assert "## " not in text and "|---|" not in text and "**" not in text, "the markdown is rendered, not shown raw"


def test_the_registered_models_page_explains_its_aliases_and_policy(browser, ui):
    show(
        browser,
        f"{ui['url']}/#/models/{ui['model']}",
        "model-description",
        [
            r"Aliases",
            r"champion: the version that sentipipe predict",
            r"The promotion policy",
            r"validated on other data",
        ],
    )


def test_the_monitoring_experiment_lists_the_champions_monitor_run(browser, ui, monitored):
    experiment, run = monitored["experiment"], monitored["run"]
    assert experiment.name == "sentipipe-monitoring" and run.info.run_name == f"monitor {ui['model']} v1"
    show(
        browser,
        f"{ui['url']}/#/experiments/{experiment.experiment_id}/runs",
        "monitoring-experiment",
        [re.escape(experiment.name), re.escape(run.info.run_name), "1 matching run"],
    )


def test_the_monitor_run_shows_drift_and_live_figures_beside_validation(browser, ui, monitored):
    """The newest window's figures (the run's latest step) as the run page lists them, and its tags."""
    from sentipipe.monitoring.drift import TESTS

    run, newest = monitored["run"], monitored["report"]["windows"][-1]
    metrics = run.data.metrics
    assert newest["live"]["labelled"] and metrics["live_accuracy"] == newest["live"]["accuracy"]
    assert {f"drift_p_{name}" for name in TESTS} <= set(metrics)
    assert metrics["val_accuracy"] == monitored["report"]["validation"]["val_accuracy"]
    names = [f"drift_p_{name}" for name in TESTS] + ["drift_alarm", "live_accuracy", "live_macro_f1", "val_accuracy"]
    rows = [rf"{name}\s+{re.escape(js_number(metrics[name]))}\b" for name in names]
    show(
        browser,
        f"{ui['url']}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}",
        "monitor-run",
        [re.escape(run.info.run_name), *rows, r"sentipipe.model_version\s*:\s*1\b", r"Status\s+Finished"],
        scroll_to="live_accuracy",
    )


def test_the_monitor_run_charts_its_figures_over_windows(browser, ui, monitored):
    """The run's charts, filtered as a reader would: live and validation accuracy, then the drift p-values."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run = monitored["run"]
    url = f"{ui['url']}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}/model-metrics"
    legend = rf"{re.escape(run.info.run_name)} \({{}}\)"
    show(browser, url, "monitor-charts", [r"Model metrics\s*\(13\)", legend.format("alarm")])
    for query, names in (("accuracy", ["live_accuracy", "val_accuracy"]), ("drift_p_", ["drift_p_unseen_rate"])):
        search = browser.find_element(By.CSS_SELECTOR, "input[placeholder='Search metric charts']")
        search.send_keys(Keys.CONTROL, "a")  # a React input: clear() leaves its state as it was
        search.send_keys(Keys.BACKSPACE, query)
        wait_for(browser, f"monitor-charts-{query.strip('_')}", [legend.format(n) for n in names] + [r"Step"])


def test_the_champions_version_page_shows_its_monitoring(browser, ui, monitored):
    """Beside the card and the val_accuracy tag: the monitor run, the alarm, the drift and the live figures."""
    report, run, tags = monitored["report"], monitored["run"], monitored["version"].tags
    live = report["live_by_version"]["1"]
    assert tags["monitor.live_accuracy"] == repr(live["accuracy"]) and tags["monitor.run_id"] == run.info.run_id
    show(
        browser,
        f"{ui['url']}/#/models/{ui['model']}/versions/1",
        "version-monitoring",
        [
            r"Source Model",
            rf"val_accuracy\s+{re.escape(tags['val_accuracy'])}",
            rf"monitor.live_accuracy\s+{re.escape(tags['monitor.live_accuracy'])}",
            rf"monitor.live_labelled\s+{live['labelled']}\b",
            rf"monitor.alarm\s+{str(report['alarm']).lower()}",
            rf"monitor.drift\s+{re.escape(tags['monitor.drift'])}",
            rf"monitor.run_id\s+{run.info.run_id}",
            rf"monitor.log\s+{re.escape(report['log'])}",
            rf"monitor.run\s+{re.escape(tags['monitor.run'])}",
        ],
        scroll_to="monitor.alarm",
    )


def test_the_champions_logged_model_lists_live_figures_beside_validation(browser, ui, monitored):
    """The version's Source Model: its validation metrics from training, the newest window's from the monitor run."""
    run, model_id = monitored["run"], monitored["model_id"]
    metrics, training = run.data.metrics, ui["run"]
    row = r"{}\s+-\s+{}\s+{}\b"
    show(
        browser,
        f"{ui['url']}/#/experiments/{ui['experiment'].experiment_id}/models/{model_id}",
        "logged-model",
        [
            row.format(
                "val_accuracy",
                re.escape(training.info.run_name),
                re.escape(js_number(training.data.metrics["val_accuracy"])),
            ),
            *(
                row.format(name, re.escape(run.info.run_name), re.escape(js_number(metrics[name])))
                for name in ("live_accuracy", "drift_p_unseen_rate", "alarm")
            ),
        ],
        scroll_to="live_accuracy",
    )


def test_the_champions_training_run_names_its_monitor_run(browser, ui, monitored):
    experiment, run = ui["experiment"], ui["run"]
    browser.get("about:blank")  # a fresh load: the page keeps the run it read before the monitor tagged it
    show(
        browser,
        f"{ui['url']}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}",
        "run-monitor-tag",
        [re.escape(run.info.run_name), rf"sentipipe.monitor_run_id\s*:\s*{monitored['run'].info.run_id}"],
        scroll_to="sentipipe.monitor_run_id",
    )
