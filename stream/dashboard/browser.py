"""Headless Debian chromium driven through Selenium, for the dashboard's browser test, its README
screenshot and its page-load benchmark (needs the ``test`` extra; not used at run time).

Only the system's ``chromium`` and ``chromedriver`` (Debian's ``chromium`` and ``chromium-driver``
packages, installed by ``make setup``) are used: Selenium Manager is kept offline and never
downloads a browser or a driver.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import urllib.request
from datetime import datetime, timedelta

from stream.base.config import load_settings
from stream.dashboard.serve import ServerThread
from stream.dashboard.server import create_app

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def find_browser() -> tuple[str | None, str | None, str]:
    """(chromium path, chromedriver path, why not) -- a reason when either is missing."""
    chromium = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    driver = shutil.which("chromedriver")
    missing = [n for n, p in (("chromium", chromium), ("chromedriver (chromium-driver)", driver)) if not p]
    why = "" if not missing else (
        f"{' and '.join(missing)} not installed: 'make setup' installs Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver)")
    try:  # selenium is in the optional test extra: its absence is a reason, not an import error
        import selenium  # noqa: F401 - imported only to learn whether it is installed
    except ImportError:
        why = why or "the selenium package is not installed (pip install -e '.[test]')"
    return chromium, driver, why


def open_browser(width: int = 1400, height: int = 1000):
    """A headless chromium WebDriver (raises RuntimeError with the reason when it cannot start)."""
    chromium, driver, why = find_browser()
    if why:
        raise RuntimeError(why)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch anything
    # the optional test extra, imported once find_browser() has said it is there
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-extensions", "--no-first-run", "--disable-background-networking",
              f"--window-size={width},{height}", "--force-device-scale-factor=1", "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(executable_path=driver))


def wait_for(driver, js: str, timeout: float = 20.0, interval: float = 0.1):
    """Poll ``return <js>`` in the page until it is truthy; returns the value, or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        v = driver.execute_script("return " + js)
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"page condition not met within {timeout}s: {js}")
        time.sleep(interval)


def console_errors(driver) -> list[str]:
    """SEVERE browser console entries (script errors, failed requests, CSP violations)."""
    try:
        logs = driver.get_log("browser")
    except Exception:  # noqa: BLE001 - a driver without log support
        return []
    return [e["message"] for e in logs if e.get("level") == "SEVERE"]


def full_page_screenshot(driver, path, width: int = 1400) -> None:
    """Resize the window to the page's height and save a PNG of the whole page."""
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(width, min(int(height) + 20, 6000))
    time.sleep(0.5)  # plotly's responsive charts re-lay out on resize
    driver.save_screenshot(str(path))


def main(argv: list[str] | None = None) -> int:
    """``python -m stream.dashboard.browser --schema demo --out docs/dashboard.png``: a screenshot of the
    overview over a schema's latest day of data (the README's picture, made from ``finsent demo``'s data)."""
    ap = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    ap.add_argument("--schema", default="demo")
    ap.add_argument("--out", default="docs/dashboard.png")
    ap.add_argument("--page", default="/", help="path to shoot (default: the overview)")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=0, help="crop to this height (default: the whole page)")
    args = ap.parse_args(argv)
    settings = load_settings().replace(schema=args.schema)
    with ServerThread(create_app(settings)) as srv:
        with urllib.request.urlopen(f"{srv.url}/api/meta", timeout=30) as r:
            meta = json.load(r)
        if not meta["last"]:
            raise SystemExit(f"schema {args.schema} has no data (run 'finsent demo' first)")
        last = datetime.fromisoformat(meta["last"].replace("Z", "+00:00"))
        first = max(datetime.fromisoformat(meta["first"].replace("Z", "+00:00")), last - timedelta(days=1))
        sep = "&" if "?" in args.page else "?"
        url = f"{srv.url}{args.page}{sep}since={first:%Y-%m-%dT%H:%MZ}&until={last:%Y-%m-%dT%H:%MZ}"
        d = open_browser(args.width, args.height or 1000)
        try:
            d.get(url)
            wait_for(d, "document.body.dataset.loaded", 60)
            wait_for(d, "document.body.dataset.live === 'ready'", 20)
            if args.height:
                time.sleep(0.5)
                d.save_screenshot(args.out)
            else:
                full_page_screenshot(d, args.out, args.width)
            errors = console_errors(d)
        finally:
            d.quit()
    print(f"wrote {args.out} ({url.replace(srv.url, '')})" + (f"; browser errors: {errors}" if errors else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
