"""Write offline.html (page.html with Vega, Vega-Lite and Vega-Embed inlined) and LICENSES.txt.

A maintainer's tool, not part of a run: users get the committed offline.html, which `.dvc/config`
names as DVC's HTML template, so `dvc plots show` writes a page that needs no network. Rerun this
to move to other versions:

    python vendor/vega/build.py [--vega 5.33.1] [--vega-lite 5.23.0] [--vega-embed 6.29.0]

It asks npm for the three packages (npm checks each tarball against the registry's integrity hash),
takes their minified browser builds, and lists in LICENSES.txt the licence of every package that
those builds bundle, as named by the builds' source maps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page.html"
OUT = HERE / "offline.html"
LICENSES = HERE / "LICENSES.txt"
MARKER = "    <!-- VENDORED SCRIPTS -->\n"
# Major versions as DVC's own page uses them (vega 5, vega-lite 5, vega-embed 6): its plot templates are
# Vega-Lite 5 specifications.
DEFAULTS = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}
VEGA_MONOREPO = "vega/vega"  # its packages share one LICENSE, which some of them do not ship
LICENCE_FILE = re.compile(r"^(licen[cs]e|copying)", re.IGNORECASE)
# A string that would end the inline <script> early, or that DVC would replace inside the script.
FORBIDDEN = re.compile(r"</script|<!--|\{(?:plot_divs|scripts|refresh_tag)\}", re.IGNORECASE)


def install(versions: dict[str, str], prefix: Path) -> Path:
    specs = [f"{name}@{version}" for name, version in versions.items()]
    flags = ["--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--no-save"]
    subprocess.run(["npm", "install", "--prefix", str(prefix), *flags, *specs], check=True)
    return prefix / "node_modules"


def bundled(source_map: Path) -> set[str]:
    """The npm packages whose code a minified build carries, from its source map's sources."""
    names = set()
    for source in json.loads(source_map.read_text())["sources"]:
        _, found, rest = source.rpartition("node_modules/")
        if found:
            parts = rest.split("/")
            names.add("/".join(parts[:2]) if parts[0].startswith("@") else parts[0])
        elif m := re.match(r"(?:\.\./)+(vega-[a-z-]+)/", source):  # a sibling package of the vega monorepo
            names.add(m.group(1))
    return names


def licence_text(modules: Path, name: str, monorepo_licence: str) -> tuple[str, str]:
    package = modules / name
    meta = json.loads((package / "package.json").read_text())
    files = sorted(p for p in package.iterdir() if LICENCE_FILE.match(p.name))
    if files:
        return meta["license"], files[0].read_text().strip()
    if meta.get("repository") == VEGA_MONOREPO:
        return meta["license"], monorepo_licence
    raise SystemExit(f"{name}: no licence file in its package; add its licence to LICENSES.txt by hand")


def script(name: str, version: str, code: str) -> str:
    if m := FORBIDDEN.search(code):
        raise SystemExit(f"{name}: its build contains {m.group(0)!r}, which cannot be inlined as it is")
    banner = f"/*! {name} {version} | BSD-3-Clause | licences: vendor/vega/LICENSES.txt */"
    return f"    <script>\n{banner}\n{code.strip()}\n    </script>\n"


def build(versions: dict[str, str]) -> None:
    page = PAGE.read_text()
    if page.count(MARKER) != 1:
        raise SystemExit(f"{PAGE}: needs the line {MARKER.strip()!r} once, where the scripts go")
    with tempfile.TemporaryDirectory() as tmp:
        modules = install(versions, Path(tmp))
        monorepo_licence = (modules / "vega-view" / "LICENSE").read_text().strip()
        scripts, digests, carried = [], [], set()
        for name, version in versions.items():
            found = json.loads((modules / name / "package.json").read_text())["version"]
            if found != version:
                raise SystemExit(f"npm installed {name} {found}, not {version}")
            build_file = modules / name / "build" / f"{name}.min.js"
            code = build_file.read_text()
            scripts.append(script(name, version, code))
            digests.append(
                f"{hashlib.sha256(build_file.read_bytes()).hexdigest()}  {name}@{version}/build/{name}.min.js"
            )
            carried |= bundled(build_file.with_suffix(".js.map")) - set(versions)

        by_text: dict[str, list[str]] = {}
        for name in [*versions, *sorted(carried)]:
            licence, text = licence_text(modules, name, monorepo_licence)
            label = f"{name} {versions[name]}" if name in versions else name
            by_text.setdefault(text, []).append(f"{label} ({licence})")
    notice = [
        "Licences of the JavaScript inlined in vendor/vega/offline.html: Vega, Vega-Lite and Vega-Embed,",
        "and the packages their minified builds bundle (named by the builds' source maps; the texts are",
        "those of the versions npm resolved when build.py ran).",
        "",
        "sha256 of the inlined builds, as published on npm:",
        *digests,
    ]
    for text, names in by_text.items():
        notice += ["", "=" * 78, *names, "-" * 78, text]
    LICENSES.write_text("\n".join(notice) + "\n")
    OUT.write_text(page.replace(MARKER, "".join(scripts)))
    print(f"wrote {OUT.relative_to(HERE.parents[1])} ({OUT.stat().st_size / 1e6:.2f} MB) and {LICENSES.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, version in DEFAULTS.items():
        parser.add_argument(f"--{name}", default=version, help=f"npm version (default {version})")
    args = parser.parse_args()
    build({name: getattr(args, name.replace("-", "_")) for name in DEFAULTS})


if __name__ == "__main__":
    main()
