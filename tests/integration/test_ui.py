"""`make ui` serves the MLflow UI; headless Chromium sees the experiment, a run's metrics, the champion and
the model card.

A tiny model is trained and registered into a temporary SQLite store, `make ui` serves that store
(UI_STORE, UI_PORT), and the Debian chromium, driven through the Debian chromedriver, opens the
experiment's runs, the run's metrics, the registered model and its version's page, where the card is
read as the browser rendered it. Screenshots of the pages are kept in test-artifacts/mlflow-ui-*.png at
the repository root (git-ignored), also when a page fails.
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
from tests.helpers import REPO, run_tiny_pipeline, write_raw_corpus
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
            "experiment": experiment,
            "run": run,
            "model": params.classifier.register.model_name,
            "reports": reports,
        }
    finally:
        stop(proc)


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
