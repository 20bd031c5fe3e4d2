"""Follow-up letters as PDF: A4 pages, the address block where a window envelope shows it, the questionnaire
on paper (tick boxes, lines to write on), page numbers per letter; many letters in one file for printing.

Pure rendering: `letters_pdf` takes what each letter says (`Letter`) and returns the PDF's bytes. The text of
each letter is put into words in its patient's language by the caller's `translation.override`.
"""

from followups.letter_pdf.document import Letter, labels, letters_pdf
from followups.letter_pdf.fonts import FALLBACK_FONT, letter_font

__all__ = ["FALLBACK_FONT", "Letter", "labels", "letter_font", "letters_pdf"]
