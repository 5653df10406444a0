"""`dvc plots show` writes a page that draws every plot of dvc.yaml with no network; headless Chromium reads it.

A copy of the repository (its .dvc/config names vendor/vega/offline.html as DVC's HTML template) runs the
classifier's stages on the tiny corpus, and `dvc plots show`, as the README says it, builds the page from
the plot files they wrote. The Debian chromium opens it with its proxy set to a port nobody listens on and
every host name unresolvable, and the test reads the drawn SVG: each plot's title, legend, lines with one
vertex per row of the run's file, and the confusion matrix's counts adding up to the test split. The same
browser shows DVC's own page (Vega, Vega-Lite and Vega-Embed from a CDN) blank: the network really is cut,
and the check fails on a page that needs one. A screenshot goes to test-artifacts/plots-offline.png.
Needs chromium and chromium-driver: `make test` (.ci/services.sh) installs them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import CLASSIFIER_STAGES, copy_repo, run_tiny_pipeline, venv_env, write_raw_corpus
from tests.integration.test_ui import ARTIFACTS, CHROMEDRIVER, CHROMIUM, INSTALL_HINT
from tests.servers import free_port

pytestmark = pytest.mark.integration

TIMEOUT = 60  # seconds for the page to draw its plots
CDN_SCRIPT = "https://cdn.jsdelivr.net/npm/vega@5.20.2"  # the first script of DVC's own page

# What the page shows of each plot, read from the drawn SVG.
READ_PLOTS = """
return Object.fromEntries(arguments[0].map(id => {
  const div = document.getElementById(id);
  const svg = div && div.querySelector('svg.marks');
  if (!svg) return [id, null];
  const box = svg.getBoundingClientRect();
  const texts = selector => [...svg.querySelectorAll(selector)].map(t => t.textContent);
  return [id, {
    width: box.width,
    height: box.height,
    titles: texts('.role-title-text'),  // the chart's, and a facet's header
    legend: texts('.role-legend-label text'),
    axes: texts('.role-axis-title text'),
    // one M or L command per vertex of each drawn line
    lines: [...svg.querySelectorAll('g.mark-line.role-mark path')]
      .map(p => ((p.getAttribute('d') || '').match(/[ML]/g) || []).length),
    cells: svg.querySelectorAll('g.mark-rect.role-mark path').length,
    cellText: texts('g.mark-text.role-mark text'),
  }];
}));
"""
# Whether the browser can fetch a URL at all (a no-cors request fails only when the network does).
FETCH = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {mode: 'no-cors'}).then(() => done('fetched')).catch(e => done(String(e)));
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A copy of the repository whose plot files are those of a tiny run of the classifier's stages."""
    work = tmp_path_factory.mktemp("plots")
    copy_repo(work)
    shutil.rmtree(work / "reports")  # the committed reports are a full run's: the page must show this one's
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
        write_raw_corpus(work)
        params = run_tiny_pipeline(only=tuple(s for s in CLASSIFIER_STAGES if s != "register"))
    return work, params


def dvc_plots_show(work: Path, *args: str) -> Path:
    """`dvc plots show` in `work` with `args`, as a user types it; the page it wrote."""
    dvc = Path(sys.executable).parent / "dvc"
    proc = subprocess.run(
        [str(dvc), "plots", "show", *args], cwd=work, env=venv_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = Path(proc.stdout.strip().splitlines()[-1].removeprefix("file://"))
    assert page.is_file(), proc.stdout
    return page


@pytest.fixture(scope="module")
def offline_browser(tmp_path_factory):
    """Headless Debian chromium with no way out: a dead proxy, and no host name resolves."""
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
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--proxy-server=http://127.0.0.1:{free_port()}",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    driver.set_script_timeout(TIMEOUT)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def defined_plots(work: Path) -> dict[str, dict]:
    """The classifier's plots as dvc.yaml defines them: id -> its x, y (file -> fields) and template."""
    plots = yaml.safe_load((work / "dvc.yaml").read_text())["plots"]
    return {name: spec for entry in plots for name, spec in entry.items()}


def open_page(driver, page: Path) -> None:
    driver.get(page.as_uri())
    assert driver.execute_async_script(FETCH, CDN_SCRIPT) != "fetched", "the browser reached the CDN"


def read_plots(driver, ids: list[str], wait: bool) -> dict[str, dict | None]:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    if wait:
        try:
            WebDriverWait(driver, TIMEOUT, poll_frequency=0.5).until(
                lambda d: all(d.execute_script(READ_PLOTS, ids).values())
            )
        except TimeoutException:
            pass  # the assertions below say which plots are missing
    return driver.execute_script(READ_PLOTS, ids)


def tick_show_values(driver, name: str) -> list[str]:
    """Tick the confusion matrix's "showValues" box as a user would; the texts its cells then show."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, f"#{name} input[type=checkbox]").click()
    WebDriverWait(driver, TIMEOUT, poll_frequency=0.2).until(
        lambda d: all(d.execute_script(READ_PLOTS, [name])[name]["cellText"])
    )
    return driver.execute_script(READ_PLOTS, [name])[name]["cellText"]


def test_every_plot_that_dvc_yaml_defines_draws_the_runs_numbers_offline(run, offline_browser):
    work, params = run
    page = dvc_plots_show(work)
    plots = defined_plots(work)
    assert {"loss", "accuracy", "confusion", "roc", "precision_recall", "calibration"} <= set(plots)

    open_page(offline_browser, page)
    drawn = read_plots(offline_browser, list(plots), wait=True)
    offline_browser.save_screenshot(str(ARTIFACTS / "plots-offline.png"))

    assert [name for name, plot in drawn.items() if plot is None] == [], "plots the page did not draw"
    for name, spec in plots.items():
        plot = drawn[name]
        assert plot["width"] > 100 and plot["height"] > 100, (name, plot)
        assert name in plot["titles"], plot
        ((file, fields),) = spec["y"].items()
        rows = pd.read_csv(work / file)
        if spec.get("template") == "confusion":
            # one cell per (actual, predicted) pair; its "showValues" box writes the counts: the test split
            labels = sorted(set(rows[spec["x"]]) | set(rows[fields]))
            assert plot["cells"] >= len(labels) ** 2, plot
            assert set(plot["cellText"]) == {""}, plot  # no counts until the box is ticked
            counts = [int(text) for text in tick_show_values(offline_browser, name)]
            assert len(counts) == len(labels) ** 2
            assert sum(counts) == len(rows) == len(pd.read_parquet(work / "data/prepared/test.parquet"))
            continue
        fields = [fields] if isinstance(fields, str) else fields
        assert spec["x"] in plot["axes"], plot
        if len(fields) > 1:
            assert set(fields) <= set(plot["legend"]), plot
        # each field's line, unsmoothed, has a vertex for every row of the file that has a value
        assert max(plot["lines"]) == max(rows[field].notna().sum() for field in fields) > 1, plot

    assert "cdn.jsdelivr" not in page.read_text()
    history = pd.read_csv(work / "reports/classifier/plots/history.csv")
    assert history["step"].max() == params.classifier.train.max_steps  # the tiny run's, not a committed file


def test_dvcs_own_page_needs_the_cdn_and_draws_nothing_in_the_same_browser(run, offline_browser, tmp_path):
    """The control: the page the check would see without the vendored template."""
    from dvc_render.html import PAGE_HTML

    work, _ = run
    template = tmp_path / "dvc-default.html"
    template.write_text(PAGE_HTML)
    page = dvc_plots_show(work, "--html-template", str(template), "--out", str(tmp_path / "online"))
    assert CDN_SCRIPT in page.read_text()

    open_page(offline_browser, page)
    plots = list(defined_plots(work))
    drawn = read_plots(offline_browser, plots, wait=False)
    assert drawn == dict.fromkeys(plots)
    assert offline_browser.execute_script("return typeof vegaEmbed") == "undefined"
