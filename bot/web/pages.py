"""The web front's HTML: every value is escaped, no inline script or style (the CSP forbids
them), labels for screen readers, and one layout that works from a phone to a desktop."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import urlencode

from bot.events import PairView
from bot.rating import LABELS, RaterPair

KEYS = {"A": "A", "B": "B", "tie": "T", "both_bad": "X"}


def page(title: str, body: str, *, script: str | None = None, header: str = "") -> str:
    js = f'<script src="/static/{script}" defer></script>' if script else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{escape(title)}</title>
<link rel="stylesheet" href="/static/style.css">
{js}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><h1>{escape(title)}</h1>{header}</header>
<main id="main">
{body}
</main>
</body>
</html>
"""


def error_page(status: int, title: str, detail: str) -> str:
    body = f'<div class="error" role="alert"><h1>{escape(title)}</h1><p>{escape(detail)}</p>' \
           f'<p class="hint">Error {status}.</p></div>'  # fmt: skip
    return page("SLaM", body)


def _hidden(fields: dict[str, Any]) -> str:
    return "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(str(v))}">'
                   for k, v in fields.items())  # fmt: skip


def _pair(view: PairView) -> str:
    return f"""<section aria-labelledby="ctx-h">
<h2 id="ctx-h" class="hint">Pair {view.pair_id} · what the answers were written for</h2>
<p class="context">{escape(view.context)}</p>
</section>
<div class="pair">
<article class="response" aria-labelledby="ra-h"><h2 id="ra-h">Response A</h2>
<p>{escape(view.response_a)}</p></article>
<article class="response" aria-labelledby="rb-h"><h2 id="rb-h">Response B</h2>
<p>{escape(view.response_b)}</p></article>
</div>"""


def rating_page(rp: RaterPair, *, csrf: str, status: str = "", status_kind: str = "ok",
                last: tuple[int, str] | None = None, score_mode: bool = False,
                change: bool = False) -> str:  # fmt: skip
    """The next pair (or a pair shown before, `change`), its vote buttons and progress."""
    header = ""
    if rp.quota and not change:
        header = f'<span class="meta">{rp.done} of {rp.quota} rated</span>'
    parts = []
    if rp.quota and not change:
        parts.append(f'<progress max="{rp.quota}" value="{min(rp.done, rp.quota)}" '
                     f'aria-label="{rp.done} of {rp.quota} pairs rated"></progress>')  # fmt: skip
    parts.append(f'<p id="status" class="status {status_kind}" role="status" '
                 f'aria-live="polite">{escape(status)}</p>')  # fmt: skip
    if last is not None:
        pair_id, what = last
        parts.append(f'<p class="hint">Your vote on pair {pair_id}: {escape(what)}. '
                     f'<a href="/rate/pair/{pair_id}">Change or retract it</a></p>')  # fmt: skip
    view = rp.view
    if view is None:
        parts.append(_finished(rp))
        return page("SLaM · blind rating", "\n".join(parts), header=header)
    parts.append(_pair(view))
    hidden = {"csrf": csrf, "pair": view.pair_id, "v": rp.version}
    if not rp.round_open:
        parts.append('<p class="status warn">This round is closed: votes on it no longer '
                     'count.</p>')  # fmt: skip
    buttons = []
    for choice in ("A", "B", "tie", "both_bad"):
        pressed = "true" if rp.choice == choice else "false"
        buttons.append(
            f'<button type="submit" name="choice" value="{choice}" aria-pressed="{pressed}" '
            f'aria-keyshortcuts="{KEYS[choice]}">{escape(LABELS[choice])} '
            f'<kbd aria-hidden="true">{KEYS[choice]}</kbd></button>')  # fmt: skip
    retract = ""
    if rp.choice is not None:
        retract = (f'<div class="actions"><button type="submit" name="choice" value="retract" '
                   f'class="secondary" aria-keyshortcuts="U">Retract my vote '
                   f'<kbd aria-hidden="true">U</kbd></button>'
                   f'<input type="hidden" name="current" value="{escape(rp.choice)}">'
                   "</div>")  # fmt: skip
    question = "Change your vote" if rp.choice else "Which response is better?"
    parts.append(f"""<form class="vote" method="post" action="/rate/vote">{_hidden(hidden)}
<fieldset><legend>{question}</legend>
<div class="choices">{"".join(buttons)}</div>{retract}
<label class="comment" for="comment">Why? (optional, sent with your vote)</label>
<textarea id="comment" name="comment" rows="2" maxlength="1000"
 placeholder="e.g. B invents a meeting"></textarea>
</fieldset></form>
<p class="hint">Keys: A, B, T (tie), X (both bad){", U (retract)" if rp.choice else ""}.</p>""")
    if score_mode:
        parts.append(_scores(rp, hidden))
    if change:
        label = "Next pair" if score_mode else "Back to your next pair"
        parts.append(f'<p><a class="button" href="/rate">{label}</a></p>')
    return page("SLaM · blind rating", "\n".join(parts), script="rate.js", header=header)


def _scores(rp: RaterPair, hidden: dict[str, Any]) -> str:
    out = []
    for target in ("A", "B"):
        current = rp.scores.get(target)
        cells = "".join(
            f'<button type="submit" name="score" value="{n}" '
            f'aria-pressed="{"true" if current == n else "false"}" '
            f'aria-label="Score response {target}: {n} of 10">{n}</button>'
            for n in range(11))  # fmt: skip
        out.append(f"""<form class="vote" method="post" action="/rate/vote">
{_hidden({**hidden, "target": target})}<fieldset><legend>Score response {target} on its own
(0 poor – 10 excellent){f": now {current}" if current is not None else ""}</legend>
<div class="scale">{cells}</div></fieldset></form>""")
    return f'<div class="scores">{"".join(out)}</div>'


def _finished(rp: RaterPair) -> str:
    text = rp.finished
    return f'<div class="status ok" role="status"><p>{escape(text)}</p><p class="hint">' \
           'Come back with the same link when the next round opens.</p></div>'  # fmt: skip


def no_round_page(message: str) -> str:
    return page("SLaM · blind rating",
                f'<div class="status warn" role="status"><p>{escape(message)}</p>'
                '<p class="hint">Come back with the same link later.</p></div>')  # fmt: skip


# A phone's leaderboard card: these columns up front, the rest behind "More" (the same cells
# as the table's; dashboard.js builds the same cards from the state it polls).
CARD_MAIN = ("quality", "decision", "votes", "$ per 1K output")
CARD_SKIP = ("#", "model")


def _card(headers: list[str], cells: list[str]) -> str:
    by = dict(zip(headers, cells, strict=False))

    def item(h: str) -> str:
        return f"<div><dt>{escape(h)}</dt><dd>{escape(by[h])}</dd></div>"

    main = "".join(item(h) for h in CARD_MAIN if h in by)
    rest = "".join(item(h) for h in headers if h not in CARD_MAIN and h not in CARD_SKIP)
    title = f"{by.get('#', '')}. {by.get('model', '')}"
    return (f'<li class="card"><h3>{escape(title)}</h3><dl class="main">{main}</dl>'
            f'<details><summary>More: latency, availability, style, monthly cost</summary>'
            f'<dl>{rest}</dl></details></li>')  # fmt: skip


def _figure(c: dict[str, str]) -> str:
    """A chart as wide as the screen (a phone gets its own rendition, `phone_url`, with labels
    of 11 px and more); a tap (or click) opens the full-size PNG."""
    name, url = escape(c["name"]), escape(c["url"])
    phone = c.get("phone_url")
    source = (f'<source id="chart-{name}-phone" media="(max-width: 37.5rem)" '
              f'srcset="{escape(phone)}" width="1080" height="1440">' if phone else "")  # fmt: skip
    return (f'<figure><a class="chart" href="{url}" target="_blank" rel="noopener" '
            f'aria-label="{escape(c["title"])}: open full size"><picture>{source}'
            f'<img id="chart-{name}" src="{url}" alt="{escape(c["alt"])}" width="1200" '
            f'height="700" loading="lazy"></picture></a>'
            f'<figcaption>{escape(c["title"])}<span class="tap"> · tap to open full size</span>'
            f"</figcaption></figure>")  # fmt: skip


def dashboard_page(state: dict[str, Any], poll_ms: int) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in state["headers"])
    rows = "".join(_row(cells) for cells in state["rows"])
    cards = "".join(_card(state["headers"], cells) for cells in state["rows"])
    figures = "".join(_figure(c) for c in state["charts"])
    version = escape(state["version"])
    feature = state.get("feature") or ""
    which = f' data-feature="{escape(feature)}"' if feature else ""
    body = f"""{_switcher(state.get("features") or [], feature)}<div id="dashboard" \
data-version="{version}" data-poll-ms="{poll_ms}"{which}>
<p class="hint"><span id="updated">Updated {escape(state["updated"])}</span> ·
<span id="live" aria-live="polite">Live: checking for new votes.</span></p>
<section aria-labelledby="dec-h"><h2 id="dec-h">Decision</h2>
<p id="decision" class="decision">{escape(state["decision"])}</p></section>
<section aria-labelledby="lb-h"><h2 id="lb-h">Leaderboard</h2>
<p id="caption" class="hint">{escape(state["caption"])}</p>
<p class="hint scroll-hint" id="scroll-hint">The table scrolls sideways: more columns →</p>
<div class="table-wrap" role="region" aria-labelledby="lb-h" aria-describedby="scroll-hint"
tabindex="0">
<table><thead><tr>{head}</tr></thead><tbody id="board-rows">{rows}</tbody></table></div>
<ol id="board-cards" class="cards" aria-label="Leaderboard, one card per model">{cards}</ol>
<p id="notes" class="notes">{escape(state["notes"])}</p></section>
<section aria-labelledby="ch-h"><h2 id="ch-h">Charts</h2>
<div class="charts">{figures or '<p class="hint">No charts yet.</p>'}</div></section>
</div>"""
    return page("SLaM · live dashboard", body, script="dashboard.js",
                header='<span class="meta">read-only</span>')  # fmt: skip


def _switcher(names: list[str], current: str) -> str:
    """Links to each feature's dashboard (none with a single feature)."""
    if len(names) < 2:
        return ""
    links = "".join(
        f'<li><a href="/dashboard?{escape(urlencode({"feature": n}))}"'
        + (' aria-current="page"' if n == current else "") + f">{escape(n)}</a></li>"
        for n in names)  # fmt: skip
    return f'<nav class="features" aria-label="Features"><ul>{links}</ul></nav>\n'


def _row(cells: Iterable[str]) -> str:
    out = []
    for i, c in enumerate(cells):
        out.append(f'<th scope="row">{escape(c)}</th>' if i == 1 else f"<td>{escape(c)}</td>")
    return f"<tr>{''.join(out)}</tr>"


def home_page() -> str:
    return page("SLaM", '<div class="error"><h1>SLaM bot</h1><p>This server needs a personal '
                "link: ask the team that runs the evaluation for one.</p></div>")  # fmt: skip
