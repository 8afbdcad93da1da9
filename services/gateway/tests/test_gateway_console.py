"""The web console's static files, served by the built gateway app at /console (docs/console.md):
before the proxy's catch-all, with their security headers, every module the shell imports present
in the package, and nothing loaded from another origin."""

from __future__ import annotations

import re
from pathlib import Path

from gateway_fakes import Harness

from tollgate.gateway.console.routes import STATIC_DIR


async def test_console_redirects_to_its_folder_and_serves_the_shell(harness: Harness) -> None:
    resp = await harness.client.get("/console")
    assert resp.status_code == 307 and resp.headers["location"] == "/console/"
    shell = await harness.client.get("/console/")
    assert shell.status_code == 200
    assert shell.headers["content-type"].startswith("text/html")
    assert '<script src="js/main.js" type="module">' in shell.text
    csp = shell.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert shell.headers["x-content-type-options"] == "nosniff"


async def test_modules_and_the_vendored_chart_library_are_served_with_script_types(harness: Harness) -> None:
    for path in ("js/main.js", "js/api.js", "js/pages/playground.js", "vendor/chart.umd.min.js"):
        resp = await harness.client.get(f"/console/{path}")
        assert resp.status_code == 200, path
        assert "javascript" in resp.headers["content-type"], (path, resp.headers["content-type"])
    css = await harness.client.get("/console/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_a_missing_console_file_is_a_404_not_forwarded(harness: Harness) -> None:
    # the proxy's catch-all would answer a 404 too, but from no service; the console's own is JSON
    resp = await harness.client.get("/console/nope.js")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"


def test_every_import_and_asset_the_console_names_is_in_the_package() -> None:
    js = sorted(STATIC_DIR.glob("js/**/*.js"))
    assert js, "no console modules in the package"
    for module in js:
        for target in re.findall(r"""from\s+["'](\.{1,2}/[^"']+)["']""", module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports missing {target}"
    shell = (STATIC_DIR / "index.html").read_text()
    for ref in re.findall(r"""(?:src|href)="([^"#]+)\"""", shell):
        assert not re.match(r"^(https?:)?//", ref), f"the shell loads {ref} from another origin"
        assert (STATIC_DIR / ref).is_file(), f"index.html names missing {ref}"


def test_no_console_file_reaches_for_another_origin() -> None:
    for path in Path(STATIC_DIR).rglob("*"):
        if path.suffix in {".js", ".css", ".html"} and "vendor" not in path.parts:
            text = path.read_text()
            assert not re.search(r"""["'(]https?://""", text), f"{path.name} names an outside URL"
