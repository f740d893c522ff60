"""Layer 3: the autograd tape (``tape``), the functional API over the ops (``functional``) and
the finite-difference checks every op's backward is tested with (``gradcheck``)."""
from gee_ref.autograd.tape import (Function, OpFunction, Tensor, apply, as_tensor, is_grad_enabled,
                                   no_grad)

__all__ = ["Function", "OpFunction", "Tensor", "apply", "as_tensor", "is_grad_enabled", "no_grad"]
