"""Vectorized truncated inner training: `vmap` over inner problems, `lax.scan` over steps, and the
meta-losses that say what each step contributes to the meta-objective."""
from lopt.unroll.meta_loss import FinalLoss, MeanLoss, Objective, ValidLoss
from lopt.unroll.truncated import InnerState, StepOutput, TruncatedUnroll

__all__ = ["FinalLoss", "InnerState", "MeanLoss", "Objective", "StepOutput", "TruncatedUnroll", "ValidLoss"]
