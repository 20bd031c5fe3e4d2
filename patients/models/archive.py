"""The patient archive: identity, contact, consent and the clinical record."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hcrm.models import BaseModel, Department


def _choices_constraint(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class Sex(models.TextChoices):
    MALE = "male", _("Male")
    FEMALE = "female", _("Female")
    OTHER = "other", _("Other")
    UNKNOWN = "unknown", _("Unknown")


class PatientSource(models.TextChoices):
    WALK_IN = "walk_in", _("Walk-in")
    REFERRAL = "referral", _("Referral")
    ONLINE = "online", _("Online")
    INQUIRY = "inquiry", _("Inquiry")
    CAMPAIGN = "campaign", _("Campaign")
    HIS_IMPORT = "his_import", _("HIS import")
    FHIR_IMPORT = "fhir_import", _("FHIR import")
    SPREADSHEET = "spreadsheet", _("Spreadsheet import")
    OTHER = "other", _("Other")


class MaritalStatus(models.TextChoices):
    """GB/T 2261.2 codes."""

    UNKNOWN = "", _("Not stated")
    UNMARRIED = "10", _("Unmarried")
    MARRIED = "20", _("Married")
    WIDOWED = "30", _("Widowed")
    DIVORCED = "40", _("Divorced")
    OTHER = "90", _("Other")


class IncomeBand(models.TextChoices):
    UNKNOWN = "", _("Not stated")
    BELOW_3000 = "lt3000", _("Below 3,000 yuan a month")
    FROM_3000 = "3000_8000", _("3,000–8,000 yuan a month")
    FROM_8000 = "8000_20000", _("8,000–20,000 yuan a month")
    ABOVE_20000 = "gt20000", _("Above 20,000 yuan a month")


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", _("Simplified Chinese")
    EN = "en", _("English")


class ConsentPurpose(models.TextChoices):
    FOLLOW_UP = "follow_up", _("Follow-up")
    APPOINTMENT = "appointment", _("Appointments")
    CARE = "care", _("Health care reminders")
    MARKETING = "marketing", _("Marketing")


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    LETTER = "letter", _("Letter")


class Tag(BaseModel):
    name = models.CharField(pgettext_lazy("thing", "name"), max_length=50, unique=True)
    color = models.CharField(_("colour"), max_length=7, default="#6b7280")

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class Patient(BaseModel):
    mrn = models.CharField(_("MRN"), max_length=32)
    name = models.CharField(_("name"), max_length=100)
    name_pinyin = models.CharField(_("name in pinyin"), max_length=300, blank=True, editable=False)
    name_pinyin_initials = models.CharField(_("pinyin initials"), max_length=100, blank=True, editable=False)
    name_pinyin_consonants = models.CharField(
        _("pinyin initial consonants"), max_length=100, blank=True, editable=False
    )
    sex = models.CharField(_("sex"), max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    national_id = models.CharField(_("national ID number"), max_length=18, blank=True)
    mobile = models.CharField(_("mobile"), max_length=20, blank=True)
    phone = models.CharField(_("other phone"), max_length=30, blank=True)
    email = models.EmailField(_("email"), blank=True)
    province = models.CharField(_("province"), max_length=30, blank=True)
    city = models.CharField(_("city"), max_length=30, blank=True)
    district = models.CharField(_("district"), max_length=30, blank=True)
    region_code = models.CharField(_("region code"), max_length=6, blank=True, help_text=_("GB/T 2260"))
    address_detail = models.CharField(_("street address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=6, blank=True)
    employer = models.CharField(_("employer"), max_length=100, blank=True)
    occupation = models.CharField(_("occupation"), max_length=50, blank=True)
    income_band = models.CharField(_("income"), max_length=12, choices=IncomeBand.choices, blank=True, default="")
    marital_status = models.CharField(
        _("marital status"),
        max_length=2,
        choices=MaritalStatus.choices,
        blank=True,
        default="",
    )
    ethnicity = models.CharField(_("ethnicity"), max_length=20, blank=True)
    family_notes = models.TextField(_("family details"), blank=True)
    source = models.CharField(
        _("source"),
        max_length=20,
        choices=PatientSource.choices,
        default=PatientSource.WALK_IN,
    )
    preferred_language = models.CharField(
        _("preferred language"),
        max_length=10,
        choices=Language.choices,
        default=Language.ZH_HANS,
    )
    is_deceased = models.BooleanField(_("deceased"), default=False)
    deceased_date = models.DateField(_("date of death"), null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="patients", verbose_name=_("tags"))
    departments = models.ManyToManyField(
        Department,
        through="PatientDepartment",
        related_name="patients",
        blank=True,
        verbose_name=_("departments"),
    )
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_from",
        verbose_name=_("merged into"),
        db_index=False,  # patient_merged_into holds only the merged patients
    )

    SENSITIVE_FIELDS = (
        "national_id",
        "address_detail",
        "employer",
        "income_band",
        "family_notes",
    )

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        permissions = [
            (
                "view_sensitive",
                _("Can see national ID, address, employer, income and family details"),
            ),
            ("view_all_patients", _("Can see patients of every department")),
        ]
        indexes = [
            models.Index(fields=["name"], name="patient_name", opclasses=["varchar_pattern_ops"]),
            models.Index(
                fields=["name_pinyin"],
                name="patient_pinyin",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["name_pinyin_initials"],
                name="patient_initials",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["name_pinyin_consonants"],
                name="patient_consonants",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(fields=["mobile"], name="patient_mobile"),
            models.Index(fields=["phone"], name="patient_phone"),
            models.Index(fields=["national_id"], name="patient_national_id"),
            models.Index(fields=["name", "birth_date"], name="patient_name_birth"),
            # Duplicate detection compares everyone born on one day (a few dozen in a million).
            models.Index(fields=["birth_date", "name_pinyin"], name="patient_birth_pinyin"),
            models.Index(fields=["updated_at"], name="patient_updated"),
            models.Index(fields=["merged_into"], condition=Q(merged_into__isnull=False), name="patient_merged_into"),
        ]
        constraints = [
            # A constraint rather than unique=True: on PostgreSQL the field would also get a
            # varchar_pattern_ops index for LIKE 'x%', and no MRN lookup is a prefix search.
            models.UniqueConstraint(fields=["mrn"], name="patient_mrn_unique"),
            models.UniqueConstraint(
                fields=["national_id"],
                condition=Q(merged_into__isnull=True) & ~Q(national_id=""),
                name="patient_national_id_unique_active",
            ),
            _choices_constraint("sex", Sex, "patient_sex_valid"),
            _choices_constraint("source", PatientSource, "patient_source_valid"),
            _choices_constraint("marital_status", MaritalStatus, "patient_marital_status_valid"),
            _choices_constraint("income_band", IncomeBand, "patient_income_band_valid"),
            _choices_constraint("preferred_language", Language, "patient_language_valid"),
            models.CheckConstraint(
                condition=Q(deceased_date__isnull=True) | Q(is_deceased=True),
                name="patient_death_date_needs_flag",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.mrn})"

    @property
    def audit_patient_uuid(self):
        return self.uuid

    @property
    def age(self) -> int | None:
        if not self.birth_date:
            return None
        from django.utils import timezone

        today = timezone.localdate()
        years = today.year - self.birth_date.year
        if (today.month, today.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


class PatientRecord(BaseModel):
    """A row that belongs to one patient; audit entries are filed under that patient."""

    class Meta:
        abstract = True

    @property
    def audit_patient_uuid(self):
        return self.patient.uuid if self.patient_id else None


class ExternalRecord(PatientRecord):
    """A record that may come from another system: re-imports update instead of duplicating."""

    source_system = models.CharField(_("source system"), max_length=64, blank=True, default="")
    external_id = models.CharField(_("external id"), max_length=128, null=True, blank=True)

    class Meta:
        abstract = True
        constraints = [
            # The external id leads: a lookup by it stays one index probe whatever the planner
            # believes about how many rows a sender has (a new sender's statistics lag behind).
            models.UniqueConstraint(
                fields=["external_id", "source_system"],
                condition=Q(external_id__isnull=False),
                name="%(app_label)s_%(class)s_external_unique",
            )
        ]


class PatientDepartment(models.Model):
    """A patient is cared for by a department: staff scoped to it may see the patient."""

    # Both columns are covered by the unique constraint and the reverse index below.
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="department_links", db_index=False)
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="patient_links", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def audit_patient_uuid(self):
        return self.patient.uuid if self.patient_id else None

    def __str__(self) -> str:
        return f"{self.patient_id} @ {self.department_id}"

    class Meta:
        verbose_name = _("patient department")
        verbose_name_plural = _("patient departments")
        indexes = [models.Index(fields=["department", "patient"], name="patient_department_reverse")]
        constraints = [
            models.UniqueConstraint(fields=["patient", "department"], name="patient_department_unique"),
        ]


class IdentifierKind(models.TextChoices):
    HIS = "his", _("HIS patient id")
    MRN = "mrn", _("Medical record number")
    VISIT_CARD = "visit_card", _("Visit card number")
    INSURANCE = "insurance", _("Medical insurance number")
    PASSPORT = "passport", _("Passport or travel permit")
    OTHER = "other", _("Other")


class PatientIdentifier(PatientRecord):
    Kind = IdentifierKind

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="identifiers")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    assigner = models.CharField(_("assigning authority"), max_length=64, blank=True, default="")
    value = models.CharField(_("value"), max_length=64)

    class Meta:
        verbose_name = _("identifier")
        verbose_name_plural = _("identifiers")
        constraints = [
            # The value leads, so the one index also answers the console's and FHIR's search by value alone.
            models.UniqueConstraint(fields=["value", "kind", "assigner"], name="identifier_unique"),
            _choices_constraint("kind", IdentifierKind, "identifier_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value}"


class Relationship(models.TextChoices):
    SPOUSE = "spouse", _("Spouse")
    PARENT = "parent", _("Parent")
    CHILD = "child", _("Child")
    SIBLING = "sibling", _("Sibling")
    RELATIVE = "relative", _("Other relative")
    GUARDIAN = "guardian", _("Guardian")
    FRIEND = "friend", _("Friend")
    OTHER = "other", _("Other")


class ContactPerson(PatientRecord):
    Relationship = Relationship

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="contact_persons")
    name = models.CharField(_("name"), max_length=100)
    relationship = models.CharField(_("relationship"), max_length=20, choices=Relationship.choices)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    is_emergency_contact = models.BooleanField(_("emergency contact"), default=False)

    class Meta:
        ordering = ["-is_emergency_contact", "id"]
        verbose_name = _("contact person")
        verbose_name_plural = _("contact persons")
        constraints = [_choices_constraint("relationship", Relationship, "contact_relationship_valid")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_relationship_display()})"


class Consent(PatientRecord):
    """An explicit consent decision; without one the hospital default applies (see `consent_defaults`)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    granted = models.BooleanField(_("granted"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(fields=["patient", "purpose", "channel"], name="consent_unique"),
            _choices_constraint("purpose", ConsentPurpose, "consent_purpose_valid"),
            _choices_constraint("channel", Channel, "consent_channel_valid"),
        ]


# --- Clinical record ---------------------------------------------------------------------


class HistoryKind(models.TextChoices):
    PAST = "past", _("Past history")
    FAMILY = "family", _("Family history")
    PERSONAL = "personal", _("Personal history")
    SURGICAL = "surgical", _("Surgical history")
    OBSTETRIC = "obstetric", _("Menstrual and obstetric history")


class ClinicalHistory(ExternalRecord):
    Kind = HistoryKind

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="histories")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    content = models.TextField(_("content"))
    recorded_at = models.DateTimeField(_("recorded at"))

    class Meta(ExternalRecord.Meta):
        ordering = ["kind", "-recorded_at"]
        verbose_name = _("history entry")
        verbose_name_plural = _("history entries")
        constraints = [
            *ExternalRecord.Meta.constraints,
            _choices_constraint("kind", HistoryKind, "history_kind_valid"),
        ]


class AllergySeverity(models.TextChoices):
    UNKNOWN = "", _("Unknown")
    MILD = "mild", _("Mild")
    MODERATE = "moderate", _("Moderate")
    SEVERE = "severe", _("Severe")


class Allergy(ExternalRecord):
    Severity = AllergySeverity

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="allergies")
    substance = models.CharField(_("substance"), max_length=100)
    code = models.CharField(_("code"), max_length=32, blank=True)
    reaction = models.CharField(_("reaction"), max_length=200, blank=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, blank=True, default="")
    is_active = models.BooleanField(_("active"), default=True)
    recorded_at = models.DateTimeField(_("recorded at"))

    class Meta(ExternalRecord.Meta):
        ordering = ["-recorded_at"]
        verbose_name = _("allergy")
        verbose_name_plural = _("allergies")
        constraints = [
            *ExternalRecord.Meta.constraints,
            _choices_constraint("severity", AllergySeverity, "allergy_severity_valid"),
        ]


class EncounterKind(models.TextChoices):
    OUTPATIENT = "outpatient", _("Outpatient")
    EMERGENCY = "emergency", _("Emergency")
    INPATIENT = "inpatient", _("Inpatient")
    PHYSICAL_EXAM = "physical_exam", _("Physical examination")


class EncounterStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    IN_PROGRESS = "in_progress", _("In progress")
    FINISHED = "finished", _("Finished")
    CANCELLED = "cancelled", _("Cancelled")


class Encounter(ExternalRecord):
    Kind = EncounterKind

    Status = EncounterStatus

    patient = models.ForeignKey(
        # indexed by the (patient, time) index below
        Patient,
        on_delete=models.CASCADE,
        related_name="encounters",
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.FINISHED)
    encounter_number = models.CharField(_("visit or admission number"), max_length=40, blank=True)
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="encounters",
        verbose_name=_("department"),
        db_index=False,  # covered by encounter_department_time
    )
    doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="encounters",
        verbose_name=_("doctor"),
        db_index=False,  # nothing looks records up by doctor
    )
    doctor_name = models.CharField(_("doctor name"), max_length=100, blank=True)
    ward = models.CharField(_("ward"), max_length=50, blank=True)
    bed = models.CharField(_("bed"), max_length=20, blank=True)
    started_at = models.DateTimeField(_("admitted or started at"))
    ended_at = models.DateTimeField(_("discharged or ended at"), null=True, blank=True)
    chief_complaint = models.CharField(_("chief complaint"), max_length=300, blank=True)

    class Meta(ExternalRecord.Meta):
        ordering = ["-started_at"]
        verbose_name = _("encounter")
        verbose_name_plural = _("encounters")
        indexes = [
            models.Index(fields=["patient", "-started_at"], name="encounter_patient_time"),
            models.Index(fields=["department", "started_at"], name="encounter_department_time"),
            # Discharges in a period (follow-up coverage statistics), read from the index alone.
            models.Index(
                fields=["ended_at"],
                name="encounter_discharge_time",
                include=["department", "status", "patient"],
                condition=Q(kind=EncounterKind.INPATIENT),
            ),
        ]
        constraints = [
            *ExternalRecord.Meta.constraints,
            _choices_constraint("kind", EncounterKind, "encounter_kind_valid"),
            _choices_constraint("status", EncounterStatus, "encounter_status_valid"),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="encounter_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.started_at:%Y-%m-%d}"

    @property
    def doctor_display(self) -> str:
        return str(self.doctor) if self.doctor_id else self.doctor_name


class ChargeCategory(models.TextChoices):
    HERBAL_MEDICINE = "herbal", _("Chinese herbal medicine")
    PATENT_MEDICINE = "patent", _("Chinese patent medicine")
    WESTERN_MEDICINE = "western", _("Western medicine")
    TREATMENT = "treatment", _("Treatment")
    EXAMINATION = "examination", _("Examination")
    LABORATORY = "laboratory", _("Laboratory")
    BED = "bed", _("Bed")
    REGISTRATION = "registration", _("Registration")
    OTHER = "other", _("Other")


class Charge(ExternalRecord):
    Category = ChargeCategory

    patient = models.ForeignKey(
        # indexed by the (patient, time) index below
        Patient,
        on_delete=models.CASCADE,
        related_name="charges",
        db_index=False,
    )
    encounter = models.ForeignKey(Encounter, on_delete=models.CASCADE, related_name="charges")
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    charged_at = models.DateTimeField(_("charged at"))

    class Meta(ExternalRecord.Meta):
        ordering = ["-charged_at"]
        verbose_name = _("charge")
        verbose_name_plural = _("charges")
        indexes = [models.Index(fields=["patient", "charged_at"], name="charge_patient_time")]
        constraints = [
            *ExternalRecord.Meta.constraints,
            _choices_constraint("category", ChargeCategory, "charge_category_valid"),
        ]


class CodeSystem(models.TextChoices):
    ICD10 = "icd10", _("ICD-10 (GB/T 14396)")
    TCM_DISEASE = "tcm_disease", _("TCM disease (GB/T 15657)")
    TCM_SYNDROME = "tcm_syndrome", _("TCM syndrome (GB/T 15657)")
    SNOMED = "snomed", _("SNOMED CT")


class Diagnosis(ExternalRecord):
    patient = models.ForeignKey(
        # indexed by the (patient, time) index below
        Patient,
        on_delete=models.CASCADE,
        related_name="diagnoses",
        db_index=False,
    )
    encounter = models.ForeignKey(
        Encounter,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="diagnoses",
    )
    system = models.CharField(_("code system"), max_length=20, choices=CodeSystem.choices)
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(pgettext_lazy("thing", "name"), max_length=200)
    is_primary = models.BooleanField(_("primary"), default=False)
    diagnosed_at = models.DateTimeField(_("diagnosed at"))
    doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("doctor"),
        db_index=False,  # nothing looks records up by doctor
    )

    class Meta(ExternalRecord.Meta):
        ordering = ["-diagnosed_at", "-is_primary"]
        verbose_name = _("diagnosis")
        verbose_name_plural = _("diagnoses")
        indexes = [
            models.Index(
                # Covers the code system too, so "prefix within a system" is answered from the index.
                fields=["code", "patient"],
                name="diagnosis_code_system",
                opclasses=["varchar_pattern_ops", "int8_ops"],
                include=["system"],
            ),
            models.Index(fields=["patient", "-diagnosed_at"], name="diagnosis_patient_time"),
        ]
        constraints = [
            *ExternalRecord.Meta.constraints,
            _choices_constraint("system", CodeSystem, "diagnosis_system_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class ProcedureSystem(models.TextChoices):
    ICD9CM3 = "icd9cm3", _("ICD-9-CM-3")
    TCM_TECHNIQUE = "tcm_technique", _("TCM technique")
    LOCAL = "local", _("Local code")


class Procedure(ExternalRecord):
    System = ProcedureSystem

    patient = models.ForeignKey(
        # indexed by the (patient, time) index below
        Patient,
        on_delete=models.CASCADE,
        related_name="procedures",
        db_index=False,
    )
    encounter = models.ForeignKey(
        Encounter,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="procedures",
    )
    system = models.CharField(_("code system"), max_length=20, choices=System.choices, default=System.LOCAL)
    code = models.CharField(_("code"), max_length=32, blank=True)
    name = models.CharField(pgettext_lazy("thing", "name"), max_length=200)
    is_surgery = models.BooleanField(_("surgery"), default=False)
    body_site = models.CharField(_("body site"), max_length=100, blank=True)
    performed_at = models.DateTimeField(_("performed at"))
    performer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("performed by"),
    )
    performer_name = models.CharField(_("performer name"), max_length=100, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta(ExternalRecord.Meta):
        ordering = ["-performed_at"]
        verbose_name = _("procedure")
        verbose_name_plural = _("procedures")
        indexes = [models.Index(fields=["patient", "-performed_at"], name="procedure_patient_time")]
        constraints = [
            *ExternalRecord.Meta.constraints,
            _choices_constraint("system", ProcedureSystem, "procedure_system_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class LabCodeSystem(models.TextChoices):
    LOINC = "loinc", _("LOINC")
    LOCAL = "local", _("Local code")


class LabFlag(models.TextChoices):
    NONE = "", _("Not flagged")
    NORMAL = "N", _("Normal")
    LOW = "L", _("Low")
    HIGH = "H", _("High")
    CRITICAL_LOW = "LL", _("Critically low")
    CRITICAL_HIGH = "HH", _("Critically high")
    ABNORMAL = "A", _("Abnormal")


class LabResult(ExternalRecord):
    Flag = LabFlag

    patient = models.ForeignKey(
        # indexed by the (patient, time) index below
        Patient,
        on_delete=models.CASCADE,
        related_name="lab_results",
        db_index=False,
    )
    encounter = models.ForeignKey(
        Encounter,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="lab_results",
    )
    panel_code = models.CharField(_("panel code"), max_length=32, blank=True)
    panel_name = models.CharField(_("panel"), max_length=100, blank=True)
    code_system = models.CharField(_("code system"), max_length=20, choices=LabCodeSystem.choices, default="local")
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("test"), max_length=100)
    value = models.CharField(_("value"), max_length=200)
    value_numeric = models.FloatField(_("numeric value"), null=True, blank=True)
    unit = models.CharField(_("unit"), max_length=30, blank=True)
    reference_range = models.CharField(_("reference range"), max_length=60, blank=True)
    abnormal_flag = models.CharField(_("flag"), max_length=2, choices=Flag.choices, blank=True, default="")
    observed_at = models.DateTimeField(_("observed at"))
    note = models.TextField(_("note"), blank=True)

    class Meta(ExternalRecord.Meta):
        ordering = ["-observed_at", "code"]
        verbose_name = _("lab result")
        verbose_name_plural = _("lab results")
        indexes = [models.Index(fields=["patient", "-observed_at"], name="lab_patient_time")]
        constraints = [
            *ExternalRecord.Meta.constraints,
            _choices_constraint("abnormal_flag", LabFlag, "lab_flag_valid"),
            _choices_constraint("code_system", LabCodeSystem, "lab_code_system_valid"),
        ]

    @property
    def is_abnormal(self) -> bool:
        return self.abnormal_flag not in ("", "N")


class MedicationKind(models.TextChoices):
    WESTERN = "western", _("Western drug")
    PATENT = "patent", _("Chinese patent medicine")
    DECOCTION = "decoction", _("Herbal decoction")
    GRANULE = "granule", _("Herbal granules")


class MedicationStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


class MedicationOrder(ExternalRecord):
    Kind = MedicationKind

    Status = MedicationStatus

    patient = models.ForeignKey(
        # indexed by the (patient, time) index below
        Patient,
        on_delete=models.CASCADE,
        related_name="medication_orders",
        db_index=False,
    )
    encounter = models.ForeignKey(
        Encounter,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="medication_orders",
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE)
    name = models.CharField(_("drug or formula"), max_length=200)
    code = models.CharField(_("code"), max_length=32, blank=True)
    dose = models.CharField(_("dose"), max_length=50, blank=True)
    route = models.CharField(_("route"), max_length=30, blank=True)
    frequency = models.CharField(_("frequency"), max_length=50, blank=True)
    days = models.PositiveIntegerField(_("days"), null=True, blank=True)
    herbs = models.JSONField(
        _("herbs"),
        default=list,
        blank=True,
        help_text=_('For formulas: [{"name": "黄芪", "dose": 30, "unit": "g", "note": "先煎"}]'),
    )
    decoction_instructions = models.TextField(_("decoction instructions"), blank=True)
    ordered_at = models.DateTimeField(_("ordered at"))
    prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("prescriber"),
    )

    class Meta(ExternalRecord.Meta):
        ordering = ["-ordered_at"]
        verbose_name = _("medication order")
        verbose_name_plural = _("medication orders")
        indexes = [models.Index(fields=["patient", "-ordered_at"], name="medication_patient_time")]
        constraints = [
            *ExternalRecord.Meta.constraints,
            _choices_constraint("kind", MedicationKind, "medication_kind_valid"),
            _choices_constraint("status", MedicationStatus, "medication_status_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class BreakGlassGrant(PatientRecord):
    """A time-limited, reasoned reveal of one patient's record and sensitive fields to one staff member."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="break_glass_grants",
    )
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="break_glass_grants")
    reason = models.TextField(_("reason"))
    expires_at = models.DateTimeField(_("expires at"))

    class Meta:
        verbose_name = _("break-the-glass grant")
        verbose_name_plural = _("break-the-glass grants")
        indexes = [models.Index(fields=["user", "expires_at"], name="break_glass_lookup")]
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="break_glass_reason_required")]
