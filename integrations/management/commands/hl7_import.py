"""Import HL7 v2 files (single messages, BHS batches, FHS files) through the pipeline."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from integrations.hl7v2.pipeline import hl7_receive_detailed
from integrations.models import InboundMessage, Transport

OUTCOMES = (
    InboundMessage.Status.APPLIED,
    InboundMessage.Status.DUPLICATE,
    InboundMessage.Status.FAILED,
    InboundMessage.Status.REJECTED,
)
SUFFIXES = {".hl7", ".txt", ".er7", ".msg", ""}


def _files(paths: list[str]) -> list[Path]:
    found = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(child for child in path.rglob("*") if child.is_file() and child.suffix.lower() in SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(_("%(path)s is neither a file nor a directory.") % {"path": name})
    return found


class Command(BaseCommand):
    help = _("Feed HL7 v2 files or directories through the pipeline and print what became of each message.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help=_("Files or directories of .hl7 files"))

    def handle(self, *args, **options) -> None:
        totals: Counter[str] = Counter()
        for path in _files(options["paths"]):
            results = hl7_receive_detailed(path.read_bytes(), transport=Transport.FILE, peer=str(path)[:100])
            counts = Counter(result.status for result in results)
            totals.update(counts)
            summary = ", ".join(f"{InboundMessage.Status(status).label} {counts.get(status, 0)}" for status in OUTCOMES)
            self.stdout.write(f"{path}: {summary}")
        summary = ", ".join(f"{InboundMessage.Status(status).label} {totals.get(status, 0)}" for status in OUTCOMES)
        self.stdout.write(_("Total: %(summary)s") % {"summary": summary})
        not_applied = sum(count for status, count in totals.items() if status not in OUTCOMES[:2])
        if not_applied:
            raise CommandError(
                _("%(count)d message(s) were not applied; see the error queue.") % {"count": not_applied},
                returncode=2,
            )
