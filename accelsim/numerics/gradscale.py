"""GradScale: a per-layer power-of-two scale for radix-4 FP4 gradients, kept across iterations.

The paper adapts each layer's gradient scale like FP16 loss scaling, but per layer. The exact
thresholds are not public; accelsim's rule (every number is a constructor option) compares this
step's ``max|g|`` with the phase-0 fp4r4 grid at the current scale ``s`` (top level ``s``,
second-highest level ``s/4``):

* **overflow** ``max|g| > overflow * s`` (default ``overflow=1``: the top level would saturate):
  raise ``s`` by factors of ``step`` until ``max|g| <= overflow * s`` (several steps at once);
* **underflow** ``max|g| < underflow * s`` (default ``underflow=1/4``: below the second-highest
  level, so the top bin is unused): lower ``s`` by one ``step`` -- unless that would overflow
  (``max|g| > overflow * s/step``), in which case ``s`` is kept, so the rule never oscillates;
* otherwise keep ``s``. ``max|g| == 0`` or non-finite also keeps ``s`` (nothing to learn from it).

``step`` is a power of two, default 4 (one radix-4 bin: the phase-0 grid stays on the same even
powers of two; the policy's ``step_log2: 2``); 2 gives a finer fit. The scale is clamped to
``[min_scale, max_scale]``.

The update runs before the step's gradient is quantized: ``s = gs.observe(g)``, then
``quantize_fp4r4(g, s, ...)`` (or ``two_phase_fp4r4``).
"""

from __future__ import annotations

import math

from .quant import _pow2_exponent, fp4r4_scale_for, max_abs

__all__ = ["GradScale", "fp4r4_scale_for"]


class GradScale:
    """Adaptive power-of-two scale for one layer's fp4r4 gradient (explicit state, no globals).

    Parameters (defaults in brackets): ``init_scale`` [1.0] power of two; ``step`` [4] factor of
    one adjustment, a power of two >= 2; ``overflow`` [1.0] raise while ``max|g| > overflow*s``;
    ``underflow`` [0.25] lower once when ``max|g| < underflow*s``; ``min_scale`` [2**-100] and
    ``max_scale`` [2**100] powers of two bounding ``s``.

    After :meth:`update`, ``scale`` is the scale to use and ``last_action`` is ``"up"``,
    ``"down"`` or ``"keep"``.
    """

    def __init__(
        self,
        init_scale: float = 1.0,
        *,
        step: int = 4,
        overflow: float = 1.0,
        underflow: float = 0.25,
        min_scale: float = 2.0**-100,
        max_scale: float = 2.0**100,
    ) -> None:
        if not (isinstance(step, int) and step >= 2 and step & (step - 1) == 0):
            raise ValueError(f"step must be a power of two >= 2, got {step!r}")
        for name, v in (("init_scale", init_scale), ("min_scale", min_scale), ("max_scale", max_scale)):
            _pow2_exponent(v, name)
        if not min_scale <= init_scale <= max_scale:
            raise ValueError(
                f"init_scale {init_scale!r} is outside [min_scale, max_scale] = "
                f"[{min_scale!r}, {max_scale!r}]"
            )
        if not (math.isfinite(overflow) and overflow > 0):
            raise ValueError(f"overflow must be a positive number, got {overflow!r}")
        if not (math.isfinite(underflow) and 0 <= underflow < overflow):
            raise ValueError(
                f"underflow must satisfy 0 <= underflow < overflow, got underflow={underflow!r}, "
                f"overflow={overflow!r}"
            )
        self.step = step
        self.overflow = float(overflow)
        self.underflow = float(underflow)
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.scale = float(init_scale)
        self.last_action = "keep"

    @classmethod
    def from_bins(
        cls, step_log2: int = 2, underflow_bins: int = 1, init_scale: float = 1.0, **kwargs
    ) -> "GradScale":
        """Build from the policy's terms: ``step = 2**step_log2``; lower when ``max|g|`` is
        ``underflow_bins`` radix-4 bins or more below the top level (``underflow = 4**-bins``)."""
        return cls(init_scale, step=2**step_log2, underflow=4.0**-underflow_bins, **kwargs)

    def update(self, max_magnitude: float) -> float:
        """Adjust the scale to this step's ``max|g|`` and return the scale to use for it."""
        g = float(max_magnitude)
        s = self.scale
        action = "keep"
        if math.isfinite(g) and g > 0:
            if g > self.overflow * s:
                while g > self.overflow * s and s * self.step <= self.max_scale:
                    s *= self.step
            elif (
                g < self.underflow * s
                and s / self.step >= self.min_scale
                and g <= self.overflow * s / self.step
            ):
                s /= self.step
            if s != self.scale:
                action = "up" if s > self.scale else "down"
        self.scale = s
        self.last_action = action
        return s

    def observe(self, g) -> float:
        """:meth:`update` with ``max|g|`` of a gradient array."""
        return self.update(max_abs(g))

    def __repr__(self) -> str:
        return (
            f"GradScale(scale={self.scale!r}, step={self.step}, overflow={self.overflow}, "
            f"underflow={self.underflow})"
        )
