"""How much memory a loaded model takes: the tensors of every torch module it holds."""

import dataclasses


def torch_modules(obj):
    """The nn.Modules inside a model object: itself, a diffusers pipeline's components, or a bundle's fields."""
    import torch

    if isinstance(obj, torch.nn.Module):
        return [obj]
    components = getattr(obj, "components", None)
    if isinstance(components, dict):
        return [m for m in components.values() if isinstance(m, torch.nn.Module)]
    if dataclasses.is_dataclass(obj):
        return [m for f in dataclasses.fields(obj) for m in torch_modules(getattr(obj, f.name))]
    return []


def nbytes(obj):
    """Bytes of parameters and buffers, counting shared (tied) tensors once."""
    seen, total = set(), 0
    for module in torch_modules(obj):
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.device.type == "meta":
                continue
            key = (tensor.device, tensor.data_ptr())
            if key in seen:
                continue
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    return total


def placement(obj):
    """(device, dtype) of the first floating-point parameter, as strings; ('cpu', '-') when there is none."""
    for module in torch_modules(obj):
        for tensor in module.parameters():
            if tensor.is_floating_point():
                return str(tensor.device), str(tensor.dtype).replace("torch.", "")
    return "cpu", "-"
