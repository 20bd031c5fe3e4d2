"""HL7 escape sequences in field values (chapter 2.7): delimiters, hex bytes, formatting."""

from __future__ import annotations

import re
from dataclasses import dataclass

from integrations.hl7v2.charset import without_nul

_HEX = re.compile(r"^X([0-9A-Fa-f]{2})+$")


@dataclass(frozen=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def encoding_characters(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


def _sequence(body: str, delimiters: Delimiters, codec: str) -> str | None:
    """The text an escape sequence stands for; None when it is not a valid sequence."""
    simple = {
        "F": delimiters.field,
        "S": delimiters.component,
        "T": delimiters.subcomponent,
        "R": delimiters.repetition,
        "E": delimiters.escape,
        "P": delimiters.truncation,
        "H": "",
        "N": "",
        ".br": "\n",
        ".sp": "\n",
        ".ce": "\n",
        ".fi": "",
        ".nf": "",
    }
    if body in simple:
        return simple[body]
    if _HEX.match(body):
        return without_nul(bytes.fromhex(body[1:]).decode(codec, errors="replace"))
    if body[:3] in (".in", ".ti", ".sk") or body[:1] in ("C", "M", "Z"):
        # Indents, character-set switches and application-defined sequences carry no text here.
        return ""
    return None


def unescape(value: str, delimiters: Delimiters, codec: str = "utf-8") -> str:
    """Decode escape sequences; a backslash that starts no valid sequence is kept as it is."""
    escape = delimiters.escape
    if not value or escape not in value:
        return value
    out = []
    index = 0
    length = len(value)
    while index < length:
        char = value[index]
        if char != escape:
            out.append(char)
            index += 1
            continue
        end = value.find(escape, index + 1)
        decoded = _sequence(value[index + 1 : end], delimiters, codec) if end > index + 1 else None
        if decoded is None:
            out.append(char)
            index += 1
        else:
            out.append(decoded)
            index = end + 1
    return "".join(out)


def escape_text(value: str, delimiters: Delimiters) -> str:
    """Text made safe for a field value (used for ACK texts that echo what the sender sent)."""
    escape = delimiters.escape
    value = value.replace(escape, f"{escape}E{escape}")
    for char, code in (
        (delimiters.field, "F"),
        (delimiters.component, "S"),
        (delimiters.subcomponent, "T"),
        (delimiters.repetition, "R"),
    ):
        value = value.replace(char, f"{escape}{code}{escape}")
    return value.replace("\r", f"{escape}.br{escape}").replace("\n", f"{escape}.br{escape}")
