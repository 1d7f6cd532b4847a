"""Vectorized truncated inner training: `vmap` over inner problems, `lax.scan` over steps."""
from lopt.unroll.truncated import InnerState, StepOutput, TruncatedUnroll

__all__ = ["InnerState", "StepOutput", "TruncatedUnroll"]
