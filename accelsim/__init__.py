"""accelsim: what 4-bit training buys on a systolic-array accelerator, in cycles, energy and
accuracy, compared with 16-bit training."""

__version__ = "0.1.0"
