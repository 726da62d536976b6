"""8-connected pieces of a binary mask: the one labeller of the package, OpenCV's connected components with
statistics (preprocessing's speck removal, the "no digit" rules' piece count, the segmentation of numbers)."""

from __future__ import annotations

import cv2
import numpy as np


def label(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels (H, W) int32 with 0 for the background and 1..n for the pieces, the pieces' areas (n,))."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8,
                                                           ltype=cv2.CV_32S)
    return labels, stats[1:, cv2.CC_STAT_AREA].astype(np.int64)


def piece_sizes(mask: np.ndarray) -> np.ndarray:
    """Pixel counts of a binary mask's 8-connected pieces."""
    return label(mask)[1]
