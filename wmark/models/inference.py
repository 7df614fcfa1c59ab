"""A trained model made cheaper to run, with the same outputs (to float rounding): each batch norm that follows a
convolution in a ``nn.Sequential`` is folded into that convolution's weights and bias (its running statistics are
fixed at inference), so it costs nothing at all. On the default's decoder (1 thread, 144 tiles of 64 px, the fine
band of a 720p frame) this took 0.30 s against 0.41 s. On a CPU the weights are then stored channels-last, which
oneDNN's convolutions run faster: 150 tiles of 64 px through the default's decoder took 0.45 s against 0.70 s (1
thread, medians of 5, both in one process; ``benchmarks/speed.py`` times whole reads). Only for models
that are read or marked, never trained on."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@torch.no_grad()
def fold_batch_norms(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with every Conv2d + BatchNorm2d pair of its Sequentials folded into the Conv2d (the
    norm becomes an identity); changed in place and returned."""
    model.eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if (type(conv) is nn.Conv2d and type(norm) is nn.BatchNorm2d and norm.track_running_stats
                    and norm.running_mean is not None):
                module[i], module[i + 1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
    return model


def for_inference(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` folded (:func:`fold_batch_norms`) and moved to ``device``; on a CPU, in channels-last memory order."""
    model = fold_batch_norms(model).to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cpu" else model
