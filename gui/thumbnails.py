"""Thumbnail encoding in workers and pixmap creation in the GUI thread."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QCoreApplication, QIODevice, QThread
from PySide6.QtGui import QImage, QPixmap, QPixmapCache

logger = logging.getLogger(__name__)

# Thumbnails are kept as JPEG bytes, at most about 6 KB for 128 px, because raw
# 128 px RGB thumbnails would take about 1 GB for a 20 000-image folder.
_JPEG_QUALITY = 90

# Size of the cache of decoded pixmaps: 64 MB fits about 1000 RGB32 pixmaps of 128 px.
PIXMAP_CACHE_KB = 64 * 1024


def encode_thumbnail(thumbnail: np.ndarray) -> bytes:
    """Encode an (h, w, 3) uint8 RGB array as JPEG bytes, in any thread.

    Raises ValueError for an array of another shape or type, and RuntimeError if
    Qt's JPEG plugin fails to encode it.
    """
    if thumbnail.ndim != 3 or thumbnail.shape[2] != 3 or thumbnail.dtype != np.uint8:
        raise ValueError(
            f"thumbnail must be an (h, w, 3) uint8 array, got {thumbnail.shape} {thumbnail.dtype}"
        )
    pixels = np.ascontiguousarray(thumbnail)
    height, width = pixels.shape[:2]
    image = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    encoded = QByteArray()
    buffer = QBuffer(encoded)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "JPEG", _JPEG_QUALITY):
        raise RuntimeError(f"encoding a {width}×{height} thumbnail as JPEG failed")
    buffer.close()
    return bytes(encoded.data())


def thumbnail_pixmap(key: str, encoded: bytes, device_pixel_ratio: float) -> QPixmap:
    """Return the pixmap of an encoded thumbnail, decoding it once into QPixmapCache.

    `key` must identify the thumbnail's content. Must run in the GUI thread, because
    QPixmap is not safe to create anywhere else. A thumbnail that fails to decode
    gives a null pixmap.
    """
    assert QThread.currentThread() is QCoreApplication.instance().thread()
    cache_key = f"{key}@{device_pixel_ratio:g}"
    cached: QPixmap | None = QPixmapCache.find(cache_key)
    if cached is not None:
        return cached

    pixmap = QPixmap()
    if not pixmap.loadFromData(encoded, "JPEG"):
        logger.warning("decoding the thumbnail of %s failed, so a placeholder is shown", key)
        return pixmap
    pixmap.setDevicePixelRatio(device_pixel_ratio)
    QPixmapCache.insert(cache_key, pixmap)
    return pixmap
