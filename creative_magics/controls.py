"""%%paint --control: the guide image a ControlNet reads, made from what the person gives.

scribble: dark strokes on a light ground (a sketch on the style canvas) become the white lines on black
that scribble ControlNets were trained on; canny: the edges of a picture, by OpenCV's Canny detector
(A1111's default thresholds, 100 and 200); none: the image as it is (edges, a depth map, a pose).
"""

from .errors import CreativeError

CANNY_LOW, CANNY_HIGH = 100, 200
MODES = ("scribble", "canny", "none")


def guide(image, mode, size):
    """The control image for `mode` at `size` (PIL RGB)."""
    import numpy as np
    from PIL import Image

    image = image.convert("RGB")
    if image.size != tuple(size):
        image = image.resize(tuple(size), Image.Resampling.LANCZOS)
    if mode == "none":
        return image
    gray = np.asarray(image.convert("L"))
    if mode == "canny":
        edges = _canny(gray)
    elif mode == "scribble":
        lines = gray < 128 if gray.mean() > 127 else gray >= 128  # the strokes are what differs from the ground
        edges = np.where(lines, 255, 0).astype(np.uint8)
    else:
        raise CreativeError(f"--control-mode must be {', '.join(MODES)}, not {mode!r}")
    return Image.fromarray(edges, "L").convert("RGB")


def _canny(gray):
    try:
        import cv2
    except ImportError:
        raise CreativeError("--control-mode canny needs OpenCV: pip install opencv-python-headless") from None
    return cv2.Canny(gray, CANNY_LOW, CANNY_HIGH)


def is_blank(image):
    """True when a guide holds no line at all (a ControlNet would steer towards an empty picture)."""
    low, high = image.convert("L").getextrema()
    return high == low
