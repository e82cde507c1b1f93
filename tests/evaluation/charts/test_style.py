"""evaluation.charts._style.figure_size: a phone's rendition of a chart is its own size, its
titles and labels wrapped to its width, without the full chart's note; the default size is
untouched outside it."""

from __future__ import annotations

import struct
from pathlib import Path

from evaluation.charts._style import figure_size, model_axis, new_figure, no_data, save


def _size(path: Path) -> tuple[int, int]:
    w, h = struct.unpack(">II", path.read_bytes()[16:24])  # IHDR
    return w, h


def test_a_phone_rendition_is_its_own_size_with_wrapped_text(tmp_path: Path) -> None:
    title = "Human preference: Bradley–Terry ratings (95% interval)"
    names = ["gpt-4", "gemma3-270m-q4_k_m", "a-rather-long-model-name:q4"]
    with figure_size(4.5, 5.4, 240):
        fig, ax = new_figure()
        ax.scatter([1, 2, 3], [1, 2, 3])
        ax.axvline(2, label="margin: 50 below the reference")
        ax.legend(loc="lower left")
        model_axis(ax, names, "gpt-4", "y")
        ax.set_title(title)
        ax.set_xlabel("rating (Elo scale: +400 = 10:1 odds of being preferred)")
        save(fig, tmp_path / "phone.png", note="a long note the full-size chart carries")
        assert ax.get_title() == ""  # moved over the whole figure, wrapped
        head = fig._suptitle
        assert head is not None and head.get_text().replace("\n", " ") == title
        assert "\n" in head.get_text() and "\n" in ax.get_xlabel()
        assert [t for t in fig.texts if "long note" in t.get_text()] == []
        labels = [t.get_text() for t in ax.texts]  # the model names (drawn as texts)
        assert max(len(line) for t in labels for line in t.split("\n")) <= 20
        box = fig.get_tightbbox(fig.canvas.get_renderer())  # in inches: nothing cut off
        assert box.x0 >= 0 and box.x1 <= fig.get_figwidth(), box
        legend = ax.get_legend()  # above the plot, on none of its points
        renderer = fig.canvas.get_renderer()
        assert legend.get_window_extent(renderer).y0 >= ax.get_window_extent(renderer).y1 - 1
        no_data(tmp_path / "empty.png", "Per-request latency (end to end)",
                "no successful latency probes.", "Run `slam probe` hourly.")  # fmt: skip
    assert _size(tmp_path / "phone.png") == (1080, 1296)
    assert _size(tmp_path / "empty.png") == (1080, 1296)
    fig, ax = new_figure()  # outside: the report's 1200 × 700, its note kept
    ax.set_title(title)
    save(fig, tmp_path / "full.png", note="the note")
    assert _size(tmp_path / "full.png") == (1200, 700)
    assert ax.get_title() == title and any(t.get_text() == "the note" for t in fig.texts)
