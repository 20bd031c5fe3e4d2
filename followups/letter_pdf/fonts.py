"""The font letters are set in.

Chinese is drawn with an embedded TrueType font (LETTER_FONT_PATH; Debian's WenQuanYi Micro Hei by default),
or, when no font file is there, with reportlab's built-in CID font STSong-Light, which the PDF reader supplies.
Registering a font is reportlab's process-wide cache, filled once per font file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont

logger = logging.getLogger(__name__)

FALLBACK_FONT = "STSong-Light"


def letter_font() -> str:
    """The registered name of the font letters are set in: the configured TTF/TTC file, else STSong-Light."""
    path = Path(settings.LETTER_FONT_PATH) if settings.LETTER_FONT_PATH else None
    if path is not None and path.is_file():
        name = "Letter-" + path.stem
        if name not in pdfmetrics.getRegisteredFontNames():
            try:
                # A collection (.ttc) holds several faces; the first is the regular one.
                pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=0))
            except (TTFError, OSError):
                logger.warning("letter font %s cannot be read; falling back to %s", path, FALLBACK_FONT)
                return _fallback_font()
        return name
    return _fallback_font()


def _fallback_font() -> str:
    if FALLBACK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
    return FALLBACK_FONT
