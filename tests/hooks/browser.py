"""A real headless browser for the UI tests: Debian's chromium and chromium-driver, driven by selenium.

Every browser has a fresh profile (``--user-data-dir`` under the test's tmp path) and saves its
screenshots next to it. Install the browser with ``apt-get install -y chromium chromium-driver``
(``.ci/run`` does it when missing).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
    # a page in a window that is not in front keeps its timers (the Deployments page polls)
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)
CLASSIC_REGISTRY_UI = (
    "_mlflow_user_setting_dismiss_next_model_registry_ui"  # MLflow's "New model registry UI" switch, off
)


class Browser:
    def __init__(self, root: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
        assert not missing, f"{missing} not found: run `apt-get update && apt-get install -y chromium chromium-driver`"
        self.shots = root / "screenshots"
        self.shots.mkdir(parents=True, exist_ok=True)
        options = Options()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={root / 'profile'}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))

    def quit(self) -> None:
        self.driver.quit()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def wait(self, check: Callable[[Any], Any], timeout: float = 60.0, what: str = "the page") -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(check)
        except Exception as error:
            path = self.shot(f"timeout-{int(time.time())}")
            raise AssertionError(f"waiting for {what}: {type(error).__name__}; screenshot {path}") from None

    def find(self, css: str, timeout: float = 60.0) -> Any:
        from selenium.webdriver.common.by import By

        return self.wait(lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, css)), None), timeout, css)

    def text(self, css: str, timeout: float = 60.0) -> str:
        """The text of the first element that matches ``css`` now (the page redraws what changed)."""
        return self._fresh(css, lambda element: element.text, timeout)

    def attribute(self, css: str, name: str, timeout: float = 60.0) -> str:
        return self._fresh(css, lambda element: element.get_attribute(name), timeout)

    def click(self, css: str, timeout: float = 60.0) -> None:
        self._fresh(css, lambda element: element.click(), timeout)

    def _fresh(self, css: str, use: Callable[[Any], Any], timeout: float) -> Any:
        """Find ``css`` and use it; found again when a redraw replaced it in between."""
        from selenium.common.exceptions import StaleElementReferenceException

        for _ in range(20):
            try:
                return use(self.find(css, timeout))
            except StaleElementReferenceException:
                continue
        raise AssertionError(f"{css} was redrawn 20 times in a row")

    def classic_registry_ui(self, server: str) -> None:
        """Switch MLflow's "New model registry UI" off (the stage dropdown lives in the classic one)."""
        self.driver.get(f"{server}/")
        self.driver.execute_script(f"localStorage.setItem('{CLASSIC_REGISTRY_UI}', 'true')")

    def transition_in_mlflow_ui(self, server: str, model: str, version: str, stage: str, archive: bool = True) -> None:
        """Open the version's page in MLflow's UI and use its stage dropdown, as a person does."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        self.driver.get(f"{server}/#/models/{model}/versions/{version}")
        self.click(".mlflow-stage-transition-dropdown")  # found again if the page redraws it meanwhile

        def menu_item(d: Any) -> Any:
            try:
                return [e for e in d.find_elements(By.CSS_SELECTOR, "li[role=menuitem]") if e.text.endswith(stage)]
            except StaleElementReferenceException:  # the menu redrew while it was read
                return []

        for _ in range(20):
            try:
                self.wait(menu_item, what=f"the 'Transition to {stage}' menu item")[0].click()
                break
            except StaleElementReferenceException:
                continue
        else:
            raise AssertionError(f"the 'Transition to {stage}' menu item was redrawn 20 times in a row")
        dialog = self.find("[role=dialog]")
        box = dialog.find_element(By.CSS_SELECTOR, "input[type=checkbox]")
        if box.is_selected() != archive:
            box.click()
        self.shot(f"mlflow-transition-{model}-v{version}-{stage}")
        next(b for b in dialog.find_elements(By.TAG_NAME, "button") if b.text == "OK").click()
        self.wait(
            lambda _: stage in self.text(".mlflow-stage-transition-dropdown"),
            what=f"the version page to show stage {stage}",
        )
