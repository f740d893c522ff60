"""Merge the axes from start_dim on: [N, C, H, W] -> [N, C*H*W] (start_dim 1 or -3); a negative
start_dim counts from the end, so -3 flattens the feature map of [N, C, H, W] and of a
population's [N, P, C, H, W] alike."""


def forward(x, start_dim=1):
    return x.reshape(x.shape[:start_dim] + (-1,)), x.shape


def backward(grad, in_shape):
    return (grad.reshape(in_shape),)
