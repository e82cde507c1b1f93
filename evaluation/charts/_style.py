"""Shared look for every chart: 1200×700 px PNGs readable in a Slack preview.

matplotlib is imported here, inside functions, so importing the chart registry stays cheap.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 7.0, 100
# (width in, height in, dpi) of new figures: a phone's dashboard draws inside `figure_size`.
_SIZE: ContextVar[tuple[float, float, int]] = ContextVar("chart_size",
                                                         default=(WIDTH_IN, HEIGHT_IN, DPI))
REFERENCE_COLOR = "#222222"
HIGHLIGHT = "#d62728"
_SETUP_DONE = False


def setup() -> None:
    """Select the Agg backend and font sizes once (≥ 11 pt everywhere)."""
    global _SETUP_DONE
    if _SETUP_DONE:
        return
    import matplotlib

    matplotlib.use("Agg", force=True)
    # The bulk of matplotlib's import time, done here so callers can time (or overlap) it.
    import matplotlib.backends.backend_agg
    import matplotlib.figure

    matplotlib.rcParams.update(
        {
            "font.size": 12,
            "axes.titlesize": 16,
            "axes.titleweight": "bold",
            "axes.labelsize": 13,
            "xtick.labelsize": 11.5,
            "ytick.labelsize": 11.5,
            "legend.fontsize": 11,
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            # Prices are full of '$': never read them as mathtext (also much faster to draw).
            "text.parse_math": False,
            # Unhinted glyphs render ~25% faster and look the same at these sizes.
            "text.hinting": "none",
            # A fixed title height: automatic placement measures every tick label of the axes
            # first (to dodge top tick labels these charts never have).
            "axes.titley": 1.0,
        }
    )
    _SETUP_DONE = True


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    left: float = 0.08,
    right: float = 0.97,
    top: float = 0.91,
    bottom: float = 0.13,
    **kw: Any,
) -> tuple[Figure, Any]:
    """A fixed-size figure with fixed margins (`model_axis` widens the left one to fit names).

    Margins are set by hand rather than by constrained layout: layout solving doubled the cost
    of every chart, and a report draws a dozen of them.
    """
    setup()
    from matplotlib.figure import Figure

    width, height, dpi = _SIZE.get()
    fig = Figure(figsize=(width, height), dpi=dpi)
    axes = fig.subplots(nrows, ncols, **kw)
    if width < WIDTH_IN:  # a narrow figure: room for wrapped titles and labels (`_fit_text`)
        top, bottom = min(top, 0.84), max(bottom, 0.3)
        left, right = max(left, 0.2), min(right, 0.93)
    fig.subplots_adjust(left=left, right=right, top=top, bottom=bottom)
    return fig, axes


@contextmanager
def figure_size(width_in: float, height_in: float, dpi: int) -> Iterator[None]:
    """Figures made inside are `width_in` × `height_in` inches at `dpi`. Fonts keep their point
    sizes, so a narrower figure has larger text relative to it (a phone's charts); titles,
    axis labels and notes are wrapped to its width when saved."""
    token = _SIZE.set((width_in, height_in, dpi))
    try:
        yield
    finally:
        _SIZE.reset(token)


def _fit_text(fig: Figure) -> None:
    """Wrap every title, axis label and figure text to the figure's width (narrow figures)."""
    width_pt = fig.get_figwidth() * 72

    def wrap(text: Any, share: float) -> None:
        lines = text.get_text().split("\n")
        chars = max(12, int(share * width_pt / (text.get_fontsize() * 0.62)))
        if max(len(line) for line in lines) > chars:  # re-wrapped only when a line is too long
            text.set_text(textwrap.fill(" ".join(lines), chars))

    if len(fig.axes) == 1 and fig.axes[0].get_title():  # one chart: its title over the figure
        ax = fig.axes[0]
        title = ax.title
        head = fig.suptitle(title.get_text(), y=0.99, va="top", fontsize=title.get_fontsize(),
                            fontweight=title.get_fontweight())  # fmt: skip
        ax.set_title("")
        wrap(head, 0.95)
    for ax in fig.axes:
        box = ax.get_position()
        legend = ax.get_legend()
        if legend is not None and len(fig.axes) == 1:  # over the plot, not on its data
            size = float(legend.get_texts()[0].get_fontsize()) if legend.get_texts() else 10.0
            chars = max(12, int(0.8 * width_pt / (size * 0.62)))  # one column, wrapped
            kept = [(h, textwrap.fill(t.get_text(), chars))
                    for h, t in zip(legend.legend_handles, legend.get_texts(), strict=False)
                    if h is not None]  # fmt: skip
            handles, labels = [h for h, _ in kept], [label for _, label in kept]
            ax.legend(handles, labels, loc="lower center", frameon=False,
                      bbox_to_anchor=(0.5, box.y1), bbox_transform=fig.transFigure,
                      fontsize=size)  # fmt: skip  (centred on the figure, which it fits)
        if ax.get_xscale() == "log":  # a decade per tick: many labels side by side, slanted
            ax.tick_params(axis="x", labelrotation=35)
        wrap(ax.title, box.width)  # centred over the axes: as wide as they are
        wrap(ax.xaxis.label, box.width)
        wrap(ax.yaxis.label, box.height * fig.get_figheight() / fig.get_figwidth())
        for t in ax.texts:
            wrap(t, box.width)
    for t in fig.texts:
        if t is not getattr(fig, "_suptitle", None):
            wrap(t, 0.9)


def _fit_inside(fig: Figure, canvas: Any) -> bool:
    """Move the axes in so that their labels (model names drawn left of a narrow figure's
    axes, tick labels, legends) lie inside the figure; True when something moved."""
    renderer = canvas.get_renderer()
    width = fig.bbox.width
    over_left = over_right = 0.0
    for ax in fig.axes:
        box = ax.get_tightbbox(renderer)
        if box is not None:
            over_left, over_right = max(over_left, -box.x0), max(over_right, box.x1 - width)
    if over_left <= 0 and over_right <= 0:
        return False
    pad = 0.015 * width
    for ax in fig.axes:
        pos = ax.get_position()
        x0 = pos.x0 + (over_left + pad) / width if over_left > 0 else pos.x0
        x1 = pos.x1 - (over_right + pad) / width if over_right > 0 else pos.x1
        if x1 - x0 < 0.35 * pos.width:  # never squeeze the plot away: keep a third of it
            continue
        ax.set_position((x0, pos.y0, x1 - x0, pos.height))
    return True


def save(
    fig: Figure,
    path: Path,
    note: str | None = None,
    *,
    no_data: str | None = None,
    meta: dict[str, str] | None = None,
) -> Path:
    """Write the PNG (exactly 1200×700). Its metadata says whether it holds data, so the
    report, the chat bot and the tests can tell a real chart from a "no data yet" one;
    `meta` adds text chunks (the quality-vs-cost chart records the decision it shows)."""
    narrow = fig.get_figwidth() < WIDTH_IN  # a phone's rendition: its note is on the full one
    if note and not narrow:
        fig.text(0.995, 0.005, note, ha="right", va="bottom", fontsize=11, color="#555555")
    if narrow:
        _fit_text(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    description = f"no data: {no_data}" if no_data else "chart"
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    if narrow and _fit_inside(fig, canvas):
        canvas.draw()
    text = {"Software": "slam", "Description": description, **(meta or {})}
    write_png(path, canvas.buffer_rgba(), text)
    return path


def write_png(path: Path, rgba: Any, text: dict[str, str]) -> None:
    """An opaque RGBA pixel buffer (height × width × 4) as an RGB PNG with text chunks.

    Hand-rolled because encoding dominated drawing: unfiltered rows at zlib level 1 take
    ~12 ms for a chart, PIL ~25 ms, savefig's RGBA at level 6 ~50 ms; the flat colours of
    a chart compress as well either way (~130 KB).
    """
    import struct
    import zlib

    import numpy as np

    pixels = np.asarray(rgba)
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # leading 0: filter "none"
    rows[:, 1:] = pixels[:, :, :3].reshape(height, 3 * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    parts = [
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
    ]
    for key, value in text.items():
        try:
            parts.append(chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
        except UnicodeEncodeError:  # iTXt: uncompressed UTF-8, no language tag
            data = key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8")
            parts.append(chunk(b"iTXt", data))
    parts += [chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)), chunk(b"IEND", b"")]
    path.write_bytes(b"".join(parts))


def png_text(png: bytes) -> dict[str, str]:
    """The tEXt and iTXt chunks of a PNG (as `write_png` writes them), without PIL."""
    import struct

    out: dict[str, str] = {}
    i = 8
    while i + 8 <= len(png):
        (length,) = struct.unpack(">I", png[i : i + 4])
        kind, body = png[i + 4 : i + 8], png[i + 8 : i + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            out[key.decode("latin-1")] = rest[4:].decode("utf-8", "replace")
        elif kind == b"IDAT":
            break  # text chunks come first
        i += 12 + length
    return out


def has_data(path: Path) -> bool:
    """False for a PNG written by `no_data`."""
    return not png_text(path.read_bytes()).get("Description", "").startswith("no data")


def no_data(path: Path, title: str, reason: str, hint: str | None = None) -> Path:
    """A chart that says there is nothing to draw yet, and how to get data."""
    fig, ax = new_figure()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.6, "No data yet", ha="center", va="center", fontsize=28, color="#777777")
    if fig.get_figwidth() < WIDTH_IN:  # a phone's: one wrapped block under the headline
        fig.subplots_adjust(left=0.05, right=0.95)
        text = reason + (f"\n\n{hint}" if hint else "")
        lines = [textwrap.fill(part, 32) if part else "" for part in text.split("\n")]
        ax.text(0.5, 0.5, "\n".join(lines), ha="center", va="top", fontsize=14)
        return save(fig, path, no_data=reason)
    ax.text(0.5, 0.45, textwrap.fill(reason, 80), ha="center", va="center", fontsize=14)
    if hint:
        ax.text(
            0.5,
            0.33,
            textwrap.fill(hint, 80),
            ha="center",
            va="center",
            fontsize=13,
            color="#1f77b4",
        )
    return save(fig, path, no_data=reason)


def wrap_name(name: str, width: int = 28) -> str:
    """Wrap a long model name at the separator that balances the lines best (at most 3 lines)."""
    if len(name) <= width:
        return name
    cuts = [i + 1 for i, ch in enumerate(name[:-1]) if ch in "-_:./"]
    if not cuts:
        return "\n".join(textwrap.wrap(name, width)[:3])
    cut = min(cuts, key=lambda i: max(i, len(name) - i))
    head, tail = name[:cut], name[cut:]
    if len(head) > width or len(tail) > width:
        # One balanced cut is not enough: fall back to greedy lines.
        parts = re.split(r"(?<=[-_:./])", name)
        lines, cur = [], ""
        for part in parts:
            if cur and len(cur) + len(part) > width:
                lines.append(cur)
                cur = part
            else:
                cur += part
        lines.append(cur)
        return "\n".join(lines[:3]) + ("…" if len(lines) > 3 else "")
    return f"{head}\n{tail}"


# Label positions tried around a point, in points: right-above, right-below, left-above, ...
_OFFSETS = ((7, 4), (7, -4), (-7, 4), (-7, -4), (7, 16), (7, -16), (-7, 16), (-7, -16))


def place_labels(ax: Axes, labels: Sequence[tuple[float, float, str, bool]]) -> None:
    """Label points (x, y, text, bold) so labels neither overlap each other nor leave the axes.

    Greedy: each label takes the first offset whose estimated box is free. Call after the axes
    limits and scales are final (positions are computed in display pixels).
    """
    ax.autoscale_view()
    px_per_pt = DPI / 72
    inside = ax.get_window_extent()
    placed: list[tuple[float, float, float, float]] = []
    for x, y, text, bold in labels:
        lines = text.split("\n")
        w = max(len(line) for line in lines) * 11 * (0.66 if bold else 0.6) * px_per_pt
        h = len(lines) * 11 * 1.25 * px_per_pt + 6  # + a little air between labels
        px, py = ax.transData.transform((x, y))
        choice = None
        for dx, dy in _OFFSETS:
            x0 = px + dx * px_per_pt - (w if dx < 0 else 0)
            y0 = py + dy * px_per_pt - (h if dy < 0 else 0)
            box = (x0, y0, x0 + w, y0 + h)
            fits = (
                inside.x0 <= box[0]
                and box[2] <= inside.x1
                and inside.y0 <= box[1]
                and box[3] <= inside.y1
            )
            free = all(
                box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1] for b in placed
            )
            if fits and free:
                choice = (dx, dy, box)
                break
        if choice is None:  # crowded: keep the default spot rather than drop the name
            dx, dy = _OFFSETS[0] if px < (inside.x0 + inside.x1) / 2 else _OFFSETS[2]
            x0 = px + dx * px_per_pt - (w if dx < 0 else 0)
            y0 = py + dy * px_per_pt
            choice = (dx, dy, (x0, y0, x0 + w, y0 + h))
        dx, dy, box = choice
        placed.append(box)
        ax.annotate(
            text,
            (x, y),
            textcoords="offset points",
            xytext=(dx, dy),
            ha="right" if dx < 0 else "left",
            va="top" if dy < 0 else "bottom",
            fontsize=11,
            fontweight="bold" if bold else "normal",
        )


def label_fontsize(n_labels: int) -> float:
    """Tick-label size that still fits `n_labels` rows on a 7-inch-high chart (never < 11)."""
    return 12.5 if n_labels <= 12 else 11.5 if n_labels <= 20 else 11.0


def model_colors(names: Iterable[str], reference: str | None = None) -> dict[str, Any]:
    """A stable colour per model (sorted order), the reference in near-black."""
    setup()
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    out: dict[str, Any] = {}
    for i, name in enumerate(sorted(set(names))):
        out[name] = REFERENCE_COLOR if name == reference else cmap(i % 20)
    return out


def model_axis(ax: Axes, names: Sequence[str], reference: str | None, axis: str = "y") -> None:
    """Model names as tick labels, wrapped, the reference in bold."""
    fig = ax.get_figure(root=True)
    narrow = fig is not None and fig.get_figwidth() < WIDTH_IN  # a phone's: shorter lines
    labels = [wrap_name(n, 18 if narrow else 28) + (" (ref)" if n == reference else "")
              for n in names]  # fmt: skip
    size = label_fontsize(len(names))
    pos = list(range(1, len(names) + 1))
    if axis == "y":
        _y_labels(ax, pos, labels, [n == reference for n in names], size)
    else:
        ax.set_xticks(
            pos,
            labels,
            fontsize=size,
            rotation=30 if len(names) > 5 else 0,
            ha="right" if len(names) > 5 else "center",
        )
        for tick, name in zip(ax.get_xticklabels(), names, strict=True):
            if name == reference:
                tick.set_fontweight("bold")
    widest = max((len(line) for label in labels for line in label.split("\n")), default=0)
    if axis == "y" and fig is not None:
        # ≈ 0.6 em per character; the axes start right after the widest name.
        need = widest * size * 0.6 / 72 / fig.get_figwidth() + 0.03
        fig.subplots_adjust(left=min(max(need, 0.08), 0.4))
    elif fig is not None and len(names) > 5:
        lines = max((label.count("\n") + 1 for label in labels), default=1)
        need = (widest * size * 0.6 * 0.5 + lines * size * 1.2) / 72 / fig.get_figheight() + 0.08
        fig.subplots_adjust(bottom=min(max(need, 0.13), 0.45))


def _y_labels(
    ax: Axes, pos: Sequence[float], labels: Sequence[str], bold: Sequence[bool], size: float
) -> None:
    """Category labels left of the y axis, drawn like tick labels.

    Plain text artists and one marker line instead of Tick objects: each Tick builds five
    artists, and 30 models on eight charts made tick construction a sixth of a report's time.
    """
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.markers import TICKLEFT, MarkerStyle
    from matplotlib.transforms import ScaledTranslation

    fig = ax.get_figure()
    assert fig is not None
    rc = matplotlib.rcParams
    tick_len, pad = rc["ytick.major.size"], rc["ytick.major.pad"]
    ax.set_yticks([])
    on_axis = ax.get_yaxis_transform()  # x in axes fraction, y in data
    ax.add_line(
        Line2D(
            [0.0] * len(pos),
            list(pos),
            linestyle="none",
            marker=MarkerStyle(TICKLEFT),
            markersize=tick_len,
            markeredgewidth=rc["ytick.major.width"],
            color=rc["ytick.color"],
            transform=on_axis,
            clip_on=False,
        )
    )
    shift = on_axis + ScaledTranslation(-(tick_len + pad) / 72, 0, fig.dpi_scale_trans)
    for y, label, b in zip(pos, labels, bold, strict=True):
        ax.text(
            0.0,
            y,
            label,
            transform=shift,
            ha="right",
            va="center_baseline",
            fontsize=size,
            fontweight="bold" if b else "normal",
            color=rc["ytick.labelcolor"] if rc["ytick.labelcolor"] != "inherit" else None,
            clip_on=False,
        )


def bars(
    ax: Axes,
    pos: Sequence[float] | Any,
    lengths: Sequence[float] | Any,
    *,
    start: Sequence[float] | Any | None = None,
    width: float = 0.6,
    colors: Any,
    edgecolors: Any = "none",
    horizontal: bool = True,
) -> None:
    """Bars as one PolyCollection: what `barh`/`bar` draw, without a Rectangle artist per
    bar (30 models × several charts of Rectangles were a visible share of a report)."""
    import numpy as np
    from matplotlib.collections import PolyCollection

    p = np.asarray(pos, dtype=float)
    lo = np.zeros_like(p) if start is None else np.asarray(start, dtype=float)
    hi = lo + np.asarray(lengths, dtype=float)
    a, b = p - width / 2, p + width / 2
    corners = [(lo, a), (hi, a), (hi, b), (lo, b)]
    verts = np.stack([np.stack(c if horizontal else c[::-1], -1) for c in corners], 1)
    ax.add_collection(PolyCollection(list(verts), facecolors=colors, edgecolors=edgecolors))
    ax.autoscale_view()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def plain_log_ticks(axis: Any, fmt: str, min_label: float = 0.0) -> None:
    """Plain-text tick labels on a log axis ('10×', '$0.01'); none below `min_label`."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    def label(v: float, _pos: object) -> str:
        return fmt.format(float(f"{v:.3g}")) if v >= min_label else ""

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(label))
    # Labelled 1-2-5 ticks already mark each decade; unlabelled minor ticks (dozens of Tick
    # objects per axis) added drawing time and no information.
    axis.set_minor_locator(NullLocator())
