"""Pure mapping from segments to archive-shaped data. No database: tests call these directly."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from functools import cached_property

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.hl7v2 import valuesets
from integrations.hl7v2.datatypes import (
    InvalidValue,
    Moment,
    cwe_code,
    cx_identifier,
    first_code,
    parse_dtm,
    xad_address,
    xcn_name,
    xpn_name,
    xtn_phones,
)
from integrations.hl7v2.errors import ErrorCode, Hl7Error, Location, Warning_
from integrations.hl7v2.message import Hl7Message, Segment
from integrations.hl7v2.sources import IDENTIFIER_KINDS, ProfileView
from patients.services.identity import IdentifierInput, PatientDemographics
from patients.validators import normalize_national_id, validate_national_id

EARLIEST_BIRTH = dt.date(1880, 1, 1)
# IN1-17 (insured's relationship to the patient) values that say the insured is the patient.
INSURED_IS_PATIENT = frozenset({"", "SEL", "SELF", "1", "01", "18"})


def moment(segment: Segment, number: int, component: int = 1) -> Moment | None:
    """A DTM field; a value that is not a date/time makes the message AE, naming the field."""
    value = segment.value(number, component)
    try:
        return parse_dtm(value)
    except InvalidValue:
        raise Hl7Error(
            _("%(segment)s-%(field)d: %(value)s is not a valid date/time.")
            % {"segment": segment.name, "field": number, "value": value},
            code=ErrorCode.DATA_TYPE,
            location=segment.location(number),
        ) from None


@dataclass
class Context:
    """The message being mapped, the sender's profile, and what the mapping noticed but left out."""

    message: Hl7Message
    profile: ProfileView
    warnings: list[Warning_] = field(default_factory=list)
    patient_created: bool = False  # set once the patient is matched: this message registered it

    @property
    def sender(self) -> str:
        return self.message.header.sender

    @property
    def default_assigner(self) -> str:
        header = self.message.header
        return header.sending_facility or header.sending_application

    @cached_property
    def event_time(self) -> dt.datetime:
        """When the event happened: EVN-6, else EVN-2, else MSH-7, else now."""
        evn = self.message.first("EVN")
        for segment, number in ((evn, 6), (evn, 2), (self.message.first("MSH"), 7)):
            if segment is not None:
                found = moment(segment, number)
                if found is not None:
                    return found.at
        return timezone.now()

    def warn(self, message: str, location: Location | None = None) -> None:
        self.warnings.append(Warning_(message=message, location=location))


# --- Patient (PID, IN1) ----------------------------------------------------------------------------


@dataclass
class MappedPatient:
    demographics: PatientDemographics
    lookup: list[IdentifierInput]  # identifiers that find this patient (PID-3)
    key: str  # sender + first identifier: what per-patient ordering locks on


def identifiers_of(segment: Segment, number: int, ctx: Context) -> tuple[list[IdentifierInput], str, str]:
    """PID-3 style CX list → (identifiers, national ID, MRN), typed by the profile."""
    identifiers: list[IdentifierInput] = []
    national_id = mrn = ""
    for components in segment.repetitions(number):
        identifier = cx_identifier(components, ctx.default_assigner)
        if identifier is None:
            continue
        meaning = ctx.profile.identifier_meanings.get(identifier.type_code)
        kind = IDENTIFIER_KINDS.get(meaning or "", "his" if not identifier.type_code else "other")
        if kind == "national_id":
            candidate = normalize_national_id(identifier.value)
            try:
                validate_national_id(candidate)
            except ValidationError:
                kind = "other"  # not a valid resident ID: kept as an identifier, never matched as one
            else:
                national_id = national_id or candidate
                continue
        if kind == "his" and ctx.profile.mrn_assigner and identifier.assigner == ctx.profile.mrn_assigner:
            mrn = mrn or identifier.value
        entry = IdentifierInput(kind=kind, value=identifier.value, assigner=identifier.assigner)
        if entry not in identifiers:
            identifiers.append(entry)
    return identifiers, national_id, mrn


def map_patient(pid: Segment, ctx: Context, *, insurance: list[Segment] = ()) -> MappedPatient:
    identifiers, national_id, mrn = identifiers_of(pid, 3, ctx)
    if not identifiers and not national_id:
        raise Hl7Error(
            _("PID-3 holds no patient identifier."),
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=pid.location(3),
        )
    if not national_id and pid.value(19):
        # PID-19 is where many Chinese HIS put the resident ID; only a valid one is taken.
        candidate = normalize_national_id(pid.value(19))
        try:
            validate_national_id(candidate)
            national_id = candidate
        except ValidationError:
            pass
    name = ""
    for components in pid.repetitions(5):
        name = xpn_name(components)
        if name:
            break
    if not name:
        raise Hl7Error(
            _("PID-5 holds no patient name."), code=ErrorCode.REQUIRED_FIELD_MISSING, location=pid.location(5)
        )
    cleared = set()
    birth = moment(pid, 7)
    if birth is not None and not (EARLIEST_BIRTH <= birth.date <= timezone.localdate()):
        raise Hl7Error(
            _("PID-7: the birth date %(date)s is impossible.") % {"date": birth.date.isoformat()},
            code=ErrorCode.DATA_TYPE,
            location=pid.location(7),
        )
    if pid.is_null(7):
        cleared.add("birth_date")
    sex_code = pid.value(8).upper()
    sex = ctx.profile.sex_codes.get(sex_code, "") if sex_code else ""
    if sex_code and not sex:
        raise Hl7Error(
            _("PID-8: sex code %(code)s is not in this source's sex codes.") % {"code": sex_code},
            code=ErrorCode.TABLE_VALUE_NOT_FOUND,
            location=pid.location(8),
        )
    phones = xtn_phones([[part[0] for part in rep] for rep in pid.repetitions(13) + pid.repetitions(14)])
    if pid.is_null(13):
        cleared |= {"mobile", "phone"}
    address = xad_address(pid.repetitions(11))
    if pid.is_null(11):
        cleared |= {"province", "city", "district", "address_detail", "postal_code"}
    marital = valuesets.MARITAL_STATUS.get(first_code(pid.components(16)), "")
    if pid.is_null(16):
        cleared.add("marital_status")
    death = moment(pid, 29)
    deceased_flag = pid.value(30).upper()
    for in1 in insurance:
        identifier = insurance_identifier(in1, ctx)
        if identifier is not None and identifier not in identifiers:
            identifiers.append(identifier)
    demographics = PatientDemographics(
        name=name[:100],
        sex=sex,
        birth_date=birth.date if birth else None,
        national_id=national_id,
        mrn=mrn,
        mobile=phones.mobile,
        phone=phones.phone,
        email=phones.email,
        province=address.province if address else "",
        city=address.city if address else "",
        district=address.district if address else "",
        address_detail=address.detail if address else "",
        postal_code=address.postal_code if address else "",
        marital_status=marital,
        is_deceased=True if deceased_flag == "Y" or death else (False if deceased_flag == "N" else None),
        deceased_date=death.date if death else None,
        identifiers=identifiers,
        cleared=frozenset(cleared),
    )
    first = identifiers[0].value if identifiers else national_id
    return MappedPatient(demographics=demographics, lookup=list(identifiers), key=f"{ctx.sender}|{first}")


def insurance_identifier(in1: Segment, ctx: Context) -> IdentifierInput | None:
    """IN1-49 (insured's id), else IN1-36 (policy number), when the insured is the patient."""
    relation = in1.components(17)
    codes = {part.strip().upper() for part in relation[:2]} or {""}
    if not codes & INSURED_IS_PATIENT:
        return None
    value = in1.value(49) or in1.value(36)
    if not value:
        return None
    assigner = in1.value(3) or in1.value(4) or ctx.default_assigner
    return IdentifierInput(kind="insurance", value=value[:64], assigner=assigner[:64])


# --- Visit (PV1) -------------------------------------------------------------------------------------


@dataclass
class MappedEncounter:
    visit_number: str
    kind: str
    status: str
    department_codes: list[str]  # candidates, most specific first: PV1-10 service, PV1-3 point of care
    ward: str
    bed: str
    doctor_name: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    admit_time_sent: bool


def map_encounter(pv1: Segment, ctx: Context) -> MappedEncounter | None:
    """PV1 → an encounter; None when the class says there is no visit (N, or empty)."""
    patient_class = pv1.value(2).upper()
    if patient_class not in valuesets.PATIENT_CLASS:
        raise Hl7Error(
            _("PV1-2: patient class %(code)s is not in HL7 table 0004.") % {"code": patient_class},
            code=ErrorCode.TABLE_VALUE_NOT_FOUND,
            location=pv1.location(2),
        )
    kind_status = valuesets.PATIENT_CLASS[patient_class]
    if kind_status is None:
        return None
    kind, status = kind_status
    admitted = moment(pv1, 44)
    discharged = moment(pv1, 45)
    started_at = admitted.at if admitted else ctx.event_time
    if discharged is not None and discharged.at < started_at:
        raise Hl7Error(
            _("PV1-45: the discharge time is before the admit time."),
            code=ErrorCode.DATA_TYPE,
            location=pv1.location(45),
        )
    location = pv1.components(3)
    point_of_care = location[0].strip() if location else ""
    room = location[1].strip() if len(location) > 1 else ""
    bed = location[2].strip() if len(location) > 2 else ""
    candidates = [code for code in (pv1.value(10), point_of_care) if code]
    return MappedEncounter(
        visit_number=pv1.value(19)[:40],
        kind=kind,
        status="finished" if discharged else status,
        department_codes=candidates,
        ward=point_of_care[:50],
        bed=(f"{room}-{bed}" if room and bed else room or bed)[:20],
        doctor_name=xcn_name([[part] for part in pv1.components(7)])[:100],
        started_at=started_at,
        ended_at=discharged.at if discharged else None,
        admit_time_sent=admitted is not None,
    )


# --- Clinical segments (NK1, DG1, AL1, PR1) -----------------------------------------------------------


@dataclass
class MappedContact:
    name: str
    relationship: str
    phone: str
    is_emergency_contact: bool


def map_contacts(segments: list[Segment]) -> list[MappedContact]:
    contacts = []
    for nk1 in segments:
        name = ""
        for components in nk1.repetitions(2):
            name = xpn_name(components)
            if name:
                break
        if not name:
            continue
        relation = first_code(nk1.components(3))
        phones = xtn_phones([[part[0] for part in rep] for rep in nk1.repetitions(5) + nk1.repetitions(6)])
        contacts.append(
            MappedContact(
                name=name[:100],
                relationship=valuesets.relationship(relation),
                phone=(phones.mobile or phones.phone)[:20],
                is_emergency_contact=relation in valuesets.EMERGENCY_CONTACT_CODES
                or first_code(nk1.components(7)) in valuesets.EMERGENCY_CONTACT_CODES,
            )
        )
    return contacts


@dataclass
class MappedDiagnosis:
    identifier: str
    system: str
    code: str
    name: str
    is_primary: bool
    diagnosed_at: dt.datetime


@functools.cache
def _code_systems() -> frozenset[str]:
    from patients.models import CodeSystem

    return frozenset(CodeSystem.values)


def map_diagnoses(segments: list[Segment], ctx: Context) -> list[MappedDiagnosis]:
    from patients.models import CodeSystem

    diagnoses = []
    for dg1 in segments:
        code = cwe_code(dg1.components(3))
        if not code.code:
            ctx.warn(_("DG1-3 holds no diagnosis code; the diagnosis was left out."), dg1.location(3))
            continue
        system_name = code.system or dg1.value(2).upper()
        system = ctx.profile.diagnosis_systems.get(system_name, "") if system_name else CodeSystem.ICD10
        if system not in _code_systems():
            ctx.warn(
                _("DG1-3: code system %(system)s is not mapped in this source's diagnosis systems; %(code)s left out.")
                % {"system": system_name, "code": code.code},
                dg1.location(3, 3),
            )
            continue
        diagnosed = moment(dg1, 5)
        diagnoses.append(
            MappedDiagnosis(
                identifier=dg1.value(20)[:64],
                system=system,
                code=code.code[:32],
                name=(code.text or dg1.value(4) or code.code)[:200],
                is_primary=dg1.value(15) == "1",
                diagnosed_at=diagnosed.at if diagnosed else ctx.event_time,
            )
        )
    return diagnoses


@dataclass
class MappedAllergy:
    code: str
    substance: str
    reaction: str
    severity: str
    recorded_at: dt.datetime


def map_allergies(segments: list[Segment], ctx: Context) -> list[MappedAllergy]:
    allergies = []
    for al1 in segments:
        allergen = cwe_code(al1.components(3))
        substance = allergen.text or allergen.code
        if not substance:
            continue
        identified = moment(al1, 6)
        allergies.append(
            MappedAllergy(
                code=allergen.code[:32],
                substance=substance[:100],
                reaction=", ".join(rep[0][0] for rep in al1.repetitions(5) if rep and rep[0][0])[:200],
                severity=valuesets.ALLERGY_SEVERITY.get(first_code(al1.components(4)), ""),
                recorded_at=identified.at if identified else ctx.event_time,
            )
        )
    return allergies


@dataclass
class MappedProcedure:
    identifier: str
    system: str
    code: str
    name: str
    performed_at: dt.datetime
    performer_name: str


def map_procedures(segments: list[Segment], ctx: Context) -> list[MappedProcedure]:
    procedures = []
    for pr1 in segments:
        code = cwe_code(pr1.components(3))
        name = code.text or pr1.value(4) or code.code
        if not name:
            continue
        performed = moment(pr1, 5)
        surgeon = pr1.repetitions(11) or pr1.repetitions(12)
        procedures.append(
            MappedProcedure(
                identifier=pr1.value(19)[:64],
                system=valuesets.PROCEDURE_SYSTEMS.get(code.system, "local"),
                code=code.code[:32],
                name=name[:200],
                performed_at=performed.at if performed else ctx.event_time,
                performer_name=xcn_name([[part[0]] for part in surgeon[0]])[:100] if surgeon else "",
            )
        )
    return procedures
