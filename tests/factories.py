"""factory_boy factories with deterministic data (seeded in conftest)."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from hcrm.models import Department, StaffDepartment, User
from patients.models import (
    Allergy,
    ClinicalHistory,
    ContactPerson,
    Diagnosis,
    Encounter,
    LabResult,
    MedicationOrder,
    Patient,
    PatientDepartment,
    PatientIdentifier,
    Procedure,
    Tag,
)
from patients.pinyin import name_search_keys
from patients.validators import national_id_check_digit

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def national_id(region: str, birth: dt.date, sequence: int) -> str:
    """A valid GB 11643 number; an odd last sequence digit means male."""
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + national_id_check_digit(first17)


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"D{n:02d}")
    name = factory.Sequence(lambda n: f"科室{n}")
    name_en = factory.Sequence(lambda n: f"Department {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    full_name = factory.Sequence(lambda n: f"职员{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if extracted:
            self.groups.set(Group.objects.filter(name__in=extracted))

    @factory.post_generation
    def departments(self, create, extracted, **kwargs):
        for department in extracted or ():
            StaffDepartment.objects.create(user=self, department=department)
        self.save()


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient
        skip_postgeneration_save = True

    mrn = factory.Sequence(lambda n: f"T{n:08d}")
    name = factory.Sequence(
        lambda n: SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 7) % len(GIVEN)] + GIVEN[(n * 3) % len(GIVEN)]
    )
    sex = factory.Sequence(lambda n: "male" if n % 2 else "female")
    birth_date = factory.Sequence(lambda n: dt.date(1950 + n % 60, 1 + n % 12, 1 + n % 28))
    national_id = factory.LazyAttributeSequence(
        lambda p, n: national_id("110105", p.birth_date, (n % 499) * 2 + (1 if p.sex == "male" else 2))
    )
    mobile = factory.Sequence(lambda n: f"+86139{n:08d}")
    province = "北京市"
    city = "北京市"
    district = "朝阳区"
    address_detail = factory.Sequence(lambda n: f"建国路{n}号")
    employer = "北京中医药大学"

    @factory.lazy_attribute
    def name_pinyin(self):
        return name_search_keys(self.name)[0]

    @factory.lazy_attribute
    def name_pinyin_initials(self):
        return name_search_keys(self.name)[1]

    @factory.lazy_attribute
    def name_pinyin_consonants(self):
        return name_search_keys(self.name)[2]

    @factory.post_generation
    def departments(self, create, extracted, **kwargs):
        for department in extracted or ():
            PatientDepartment.objects.create(patient=self, department=department)


class IdentifierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PatientIdentifier

    patient = factory.SubFactory(PatientFactory)
    kind = "visit_card"
    assigner = "HIS"
    value = factory.Sequence(lambda n: f"C{n:010d}")


def _past(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


class EncounterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Encounter

    patient = factory.SubFactory(PatientFactory)
    kind = "outpatient"
    department = factory.SubFactory(DepartmentFactory)
    doctor_name = "李时珍"
    started_at = factory.Sequence(lambda n: _past(30 + n))
    chief_complaint = "头痛3天"


class DiagnosisFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Diagnosis

    patient = factory.SubFactory(PatientFactory)
    encounter = None
    system = "icd10"
    code = "I10"
    name = "原发性高血压"
    is_primary = True
    diagnosed_at = factory.Sequence(lambda n: _past(20 + n))


class ProcedureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Procedure

    patient = factory.SubFactory(PatientFactory)
    system = "tcm_technique"
    code = "ZJ01"
    name = "针刺"
    performed_at = factory.Sequence(lambda n: _past(10 + n))


class LabResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LabResult

    patient = factory.SubFactory(PatientFactory)
    panel_name = "血糖"
    code_system = "loinc"
    code = "2345-7"
    name = "葡萄糖"
    value = "7.8"
    value_numeric = 7.8
    unit = "mmol/L"
    reference_range = "3.9-6.1"
    abnormal_flag = "H"
    observed_at = factory.Sequence(lambda n: _past(5 + n))


class MedicationOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MedicationOrder

    patient = factory.SubFactory(PatientFactory)
    kind = "decoction"
    name = "天麻钩藤饮"
    herbs = factory.LazyFunction(
        lambda: [{"name": "天麻", "dose": 9, "unit": "g"}, {"name": "钩藤", "dose": 12, "unit": "g", "note": "后下"}]
    )
    decoction_instructions = "每日1剂，水煎400ml，分早晚两次温服"
    days = 7
    ordered_at = factory.Sequence(lambda n: _past(3 + n))


class AllergyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Allergy

    patient = factory.SubFactory(PatientFactory)
    substance = "青霉素"
    reaction = "皮疹"
    severity = "moderate"
    recorded_at = factory.Sequence(lambda n: _past(100 + n))


class ClinicalHistoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClinicalHistory

    patient = factory.SubFactory(PatientFactory)
    kind = "past"
    content = "高血压病史10年"
    recorded_at = factory.Sequence(lambda n: _past(200 + n))


class ContactPersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactPerson

    patient = factory.SubFactory(PatientFactory)
    name = "李四"
    relationship = "spouse"
    phone = "+8613700001111"
    is_emergency_contact = True


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"标签{n}")


# --- Segments and statistics ---------------------------------------------------------------------

from patients.models import Charge, Consent, Segment  # noqa: E402  (appended section)


class ChargeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Charge

    patient = factory.SubFactory(PatientFactory)
    encounter = factory.SubFactory(EncounterFactory, patient=factory.SelfAttribute("..patient"))
    category = "herbal"
    amount = 100
    charged_at = factory.LazyAttribute(lambda charge: charge.encounter.started_at)


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    patient = factory.SubFactory(PatientFactory)
    purpose = "marketing"
    channel = "sms"
    granted = True


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"分群{n}")
    filters = factory.LazyFunction(dict)


# --- Contact log ---------------------------------------------------------------------------------

from patients.models import ContactEntry, ContactReview  # noqa: E402  (appended section)


class ContactEntryFactory(factory.django.DjangoModelFactory):
    """A phone call made by a member of staff; pass `staff` and `department` to match a fixture user."""

    class Meta:
        model = ContactEntry

    patient = factory.SubFactory(PatientFactory)
    staff = factory.SubFactory(UserFactory)
    department = None
    channel = "phone"
    direction = "out"
    purpose = "follow_up"
    outcome = "reached"
    occurred_at = factory.Sequence(lambda n: _past(1) - dt.timedelta(minutes=n))
    duration_seconds = 180
    summary = "术后随访，恢复良好"


class ContactReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactReview

    contact = factory.SubFactory(ContactEntryFactory)
    reviewer = factory.SubFactory(UserFactory)
    score = 4
    comment = "沟通清楚"


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A real, playable WAV file: a quiet 440 Hz tone, 16-bit mono."""
    import io
    import math
    import struct
    import wave

    frames = b"".join(
        struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * index / rate)))
        for index in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(frames)
    return buffer.getvalue()


def wav_recording(name: str = "call.wav", seconds: float = 1.0):
    """An uploaded recording, as a form or the API receives it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, wav_bytes(seconds), content_type="audio/wav")
