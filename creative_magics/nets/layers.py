"""The names of VGG19's convolutions in torchvision's layer order, and of the CycleGAN painters; a leaf,
so the parameter checks know them without importing torch."""

# Convolutions per block of torchvision's VGG19 ("configuration E"): 2, 2, 4, 4, 4.
CONVS_PER_BLOCK = (2, 2, 4, 4, 4)


def _layer_index():
    names, index = {}, 0
    for block, convs in enumerate(CONVS_PER_BLOCK, start=1):
        for conv in range(1, convs + 1):
            names[f"conv{block}_{conv}"] = index
            index += 2  # conv, relu
        index += 1  # max pool
    return names


# "conv4_2" -> 21: index of the conv in `features`; its ReLU output is at index + 1.
LAYER_INDEX = _layer_index()
LAYER_NAMES = tuple(LAYER_INDEX)

# The photo -> painting generators Zhu et al. published with CycleGAN (style_<painter>.pth).
PAINTERS = ("monet", "vangogh", "cezanne", "ukiyoe")
