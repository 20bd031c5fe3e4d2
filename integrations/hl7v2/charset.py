"""MSH-18 character sets (HL7 table 0211 and what Chinese HIS write there) → Python codecs."""

from __future__ import annotations

import re

# Keys are MSH-18 upper-cased with spaces, dashes and underscores removed.
_CODECS = {
    "UNICODEUTF8": "utf-8",
    "UTF8": "utf-8",
    "ISOIR192": "utf-8",
    "GB18030": "gb18030",
    "GB180302000": "gb18030",
    "GB180302005": "gb18030",
    # GBK and GB 2312 are subsets of GB18030: one decoder reads all three.
    "GBK": "gb18030",
    "CP936": "gb18030",
    "GB2312": "gb18030",
    "ISOIR58": "gb18030",
    "ASCII": "ascii",
    "USASCII": "ascii",
    "ISOIR6": "ascii",
    "8859/1": "latin-1",
    "88591": "latin-1",
    "ISO88591": "latin-1",
    "LATIN1": "latin-1",
    "ISOIR100": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
}
_NOISE = re.compile(r"[\s\-_]")


def codec_for(msh18: str) -> str | None:
    """The Python codec for an MSH-18 value, or None when it names a character set not supported."""
    key = _NOISE.sub("", msh18.upper())
    return _CODECS.get(key)


def header_text(segment: bytes) -> str:
    """An MSH segment as text before its character set is known: UTF-8, else GB18030, else byte for byte."""
    for codec in ("utf-8", "gb18030"):
        try:
            return without_nul(segment.decode(codec))
        except UnicodeDecodeError:
            continue
    return without_nul(segment.decode("latin-1"))


def without_nul(text: str) -> str:
    """Text without NUL characters: they carry nothing in HL7 and no database text column can hold them."""
    return text.replace("\x00", "") if "\x00" in text else text
