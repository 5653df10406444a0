"""What `sentipipe monitor` shows a person: the HTML page and the lines it prints."""

from __future__ import annotations

import html

from sentipipe.monitoring.drift import TESTS


def render_html(report: dict) -> str:
    """One self-contained page (no script, no network): each window's tests, what moved, the live figures."""
    e = html.escape
    m = report["model"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>monitor {e(m['name'])} v{e(m['version'])}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.moved{background:#fdd}"
        ".ok{background:#efe}h2{margin-top:2em}</style></head><body>",
        f"<h1>{e(m['name'])} version {e(m['version'])}: {'ALARM' if report['alarm'] else 'no alarm'}</h1>",
        f"<p>Log <code>{e(report['log'])}</code>: {report['rows_logged']} rows of this version "
        f"({report['rows_waiting']} waiting for a full window of {report['window_rows']}). Reference: "
        f"<code>{e(report['reference']['path'])}</code>, the version's validation texts scored as served"
        f"{' (' + str(report['reference'].get('rows')) + ' rows)' if 'rows' in report['reference'] else ''}. "
        f"A test moves when its p-value is under {report['alpha']} / {len(TESTS)} (Bonferroni).</p>",
    ]
    validation = ", ".join(f"{k} {v:.4f}" for k, v in report["validation"].items()) or "none recorded"
    parts.append(f"<p>Validation figures of this version: {e(validation)}.</p>")
    if not report["windows"]:
        parts.append("<p>No new full window since the last call: nothing tested.</p>")
    for w in report["windows"]:
        verdict = "ALARM: " + ", ".join(w["moved"] + (["live accuracy"] if w["accuracy_alarm"] else []))
        parts.append(
            f"<h2>Window {w['index']} ({e(w['first_time'])} to {e(w['last_time'])}): "
            f"{e(verdict) if w['alarm'] else 'nothing moved'}</h2>"
        )
        parts.append(
            "<table><tr><th>test</th><th>what</th><th>reference</th><th>window</th>"
            "<th>statistic</th><th>p-value</th></tr>"
        )
        for name, t in w["tests"].items():
            parts.append(
                f"<tr class='{'moved' if t['moved'] else 'ok'}'><td>{e(name)}</td><td>{e(t['what'])}</td>"
                f"<td>{e(t['reference'])}</td><td>{e(t['window'])}</td><td>{t['statistic']:.4f}</td>"
                f"<td>{t['p_value']:.3g}</td></tr>"
            )
        parts.append("</table>")
        live = w["live"]
        if live["labelled"]:
            f1 = "" if live["macro_f1"] is None else f", macro-F1 {live['macro_f1']:.4f}"
            parts.append(f"<p>Live: {live['labelled']} rows labelled, accuracy {live['accuracy']:.4f}{f1}.</p>")
    parts.append(
        "<h2>Live figures by version</h2><table><tr><th>version</th><th>labelled</th>"
        "<th>accuracy</th><th>macro-F1</th></tr>"
    )
    for version, live in report["live_by_version"].items():
        acc = "" if live["accuracy"] is None else f"{live['accuracy']:.4f}"
        f1 = "" if live["macro_f1"] is None else f"{live['macro_f1']:.4f}"
        parts.append(f"<tr><td>{e(version)}</td><td>{live['labelled']}</td><td>{acc}</td><td>{f1}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def summary_lines(report: dict) -> list[str]:
    """What the command prints: one line a window, naming what moved."""
    m = report["model"]
    lines = [f"monitor {m['name']} version {m['version']}: {report['rows_logged']} rows logged"]
    if report.get("note"):
        lines.append(report["note"])
    elif not report["windows"]:
        lines.append(f"no new full window of {report['window_rows']} rows since the last call; nothing tested")
    for w in report["windows"]:
        tests = w["tests"]
        moved = [
            f"{n} ({tests[n]['reference']} -> {tests[n]['window']}, p={tests[n]['p_value']:.2g})" for n in w["moved"]
        ]
        live = w["live"]
        live_text = f"; live accuracy {live['accuracy']:.4f} on {live['labelled']}" if live["labelled"] else ""
        state = "DRIFT: " + "; ".join(moved) if moved else "no drift"
        if w["accuracy_alarm"]:
            state += "; LIVE ACCURACY below validation"
        lines.append(f"window {w['index']}: {state}{live_text}")
    return lines
