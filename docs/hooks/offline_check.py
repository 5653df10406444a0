"""Fail the build when a page would load anything from the network.

The site is read offline (the project's promise), so a script, style sheet,
font, image or frame fetched from another host is an error, not a warning:
the built page names the asset. Links a reader clicks (`<a href=...>`) are fine.
"""

from __future__ import annotations

import re
from typing import Any

from mkdocs.exceptions import PluginError

# src= on any element, href= on <link> (style sheets, fonts, icons), url(...) and @import in inline CSS
EXTERNAL = re.compile(
    r"""(?:\bsrc\s*=\s*["']?|<link\b[^>]*\bhref\s*=\s*["']?|url\(\s*["']?|@import\s+["'])((?:https?:)?//[^"')\s>]+)""",
    re.IGNORECASE,
)


def external_assets(html: str) -> list[str]:
    return sorted(set(EXTERNAL.findall(html)))


def on_post_page(output: str, page: Any, config: Any) -> str:
    found = external_assets(output)
    if found:
        raise PluginError(f"{page.file.src_uri} would load from the network: {', '.join(found)}")
    return output
