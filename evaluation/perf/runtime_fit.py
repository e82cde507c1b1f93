"""Idealized runtime (HELM-style efficiency): runtime ≈ a + b·prompt_tokens + c·output_tokens.

Fitted per model with a robust loss (soft-L1) on contention-free requests — single-stream probes,
sweep requests at concurrency 1 and sequential generations — so one slow request on a busy host
does not drag the line. The slope `c` (seconds per output token) prices a model on equal
footing: contention-free $ per 1K output tokens = $/hour ÷ 3600 × 1000·c.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_POINTS = 2000  # plenty for 3 parameters; keeps 30 models × 30 days of probes fast


@dataclass(frozen=True)
class RuntimeFit:
    model: str
    a_s: float  # fixed overhead per request (s)
    b_s_per_prompt_token: float
    c_s_per_output_token: float
    r2: float  # on all points, ordinary definition
    rmse_s: float
    n: int
    note: str = ""

    def predict(self, prompt_tokens: float, output_tokens: float) -> float:
        return (
            self.a_s
            + self.b_s_per_prompt_token * prompt_tokens
            + self.c_s_per_output_token * output_tokens
        )

    def cost_per_1k_output(self, hourly_usd: float | None) -> float | None:
        """Contention-free $ per 1K output tokens at this host price (None if unpriced)."""
        if hourly_usd is None:
            return None
        return hourly_usd / 3600 * 1000 * self.c_s_per_output_token

    @property
    def quality(self) -> str:
        """A word for the fit: good (R² ≥ 0.9), fair (≥ 0.6) or poor."""
        if self.r2 >= 0.9:
            return "good"
        return "fair" if self.r2 >= 0.6 else "poor"

    def describe(self) -> str:
        return (
            f"{self.model}: runtime ≈ {self.a_s:.3f} s + {self.b_s_per_prompt_token * 1000:.2f} ms"
            f"·prompt + {self.c_s_per_output_token * 1000:.2f} ms·output (R² {self.r2:.2f}, "
            f"{self.quality}, n={self.n}){' — ' + self.note if self.note else ''}"
        )


def fit_runtime(
    model: str,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    latency_s: np.ndarray,
    seed: int = 0,
) -> RuntimeFit | None:
    """Robust non-negative fit; None with fewer than 3 usable points or no output-length data."""
    from scipy.optimize import least_squares

    p = np.asarray(prompt_tokens, dtype=float)
    o = np.asarray(output_tokens, dtype=float)
    y = np.asarray(latency_s, dtype=float)
    keep = np.isfinite(p) & np.isfinite(o) & np.isfinite(y) & (y > 0)
    p, o, y = p[keep], o[keep], y[keep]
    n = int(y.size)
    if n < 3:
        return None
    if n > MAX_POINTS:
        idx = np.random.default_rng(seed).choice(n, MAX_POINTS, replace=False)
        p, o, y = p[idx], o[idx], y[idx]
    notes = []
    # A constant column cannot be told apart from the intercept: fix its slope at 0 instead.
    use_p = bool(np.ptp(p) > 0)
    use_o = bool(np.ptp(o) > 0)
    if not use_p:
        notes.append("prompt length never varied, so its cost is folded into a")
    if not use_o:
        notes.append("output length never varied, so c is runtime ÷ tokens")
    cols = [np.ones_like(y)] + ([p] if use_p else []) + ([o] if use_o else [])
    X = np.column_stack(cols)
    scale = max(float(np.median(y)) * 0.1, 1e-3)
    x0 = np.linalg.lstsq(X, y, rcond=None)[0].clip(min=0)
    fit = least_squares(
        lambda beta: X @ beta - y, x0, loss="soft_l1", f_scale=scale, bounds=(0, np.inf)
    )
    beta = list(fit.x)
    a = beta.pop(0)
    b = beta.pop(0) if use_p else 0.0
    if use_o:
        c = beta.pop(0)
    else:
        # Without variation in length, attribute the non-fixed time per token.
        c = float(np.median(y / np.maximum(o, 1)))
        a = 0.0
    pred = a + b * p + c * o
    resid = y - pred
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = (
        1.0 - float(np.sum(resid**2)) / ss_tot
        if ss_tot > 0
        else (1.0 if np.allclose(resid, 0) else 0.0)
    )
    return RuntimeFit(
        model=model,
        a_s=float(a),
        b_s_per_prompt_token=float(b),
        c_s_per_output_token=float(c),
        r2=r2,
        rmse_s=float(np.sqrt(np.mean(resid**2))),
        n=n,
        note="; ".join(notes),
    )
