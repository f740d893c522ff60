"""Layer 5. Optimisers and learning-rate schedules for gee_ref's parameter Tensors (may import
layers 1-4).

* ``SGD``: momentum / Nesterov / L2 decay, PyTorch's ``torch.optim.SGD`` convention.
* ``AdamW``: Adam with decoupled weight decay (Loshchilov & Hutter 2019).
* ``CosineSchedule``: linear warmup, then a half cosine (Loshchilov & Hutter 2017).

Each optimiser updates ``Tensor.data`` in place and skips parameters without a gradient;
``state_dict()`` returns host NumPy arrays only, so it can go straight into
``gee_ref.storage.checkpoint.save_checkpoint`` as one group.
"""
from gee_ref.optim.adamw import AdamW
from gee_ref.optim.schedule import CosineSchedule
from gee_ref.optim.sgd import SGD

__all__ = ["SGD", "AdamW", "CosineSchedule"]
