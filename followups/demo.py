"""The follow-ups part of the demo hospital: the built-in questionnaires and alert rules, a few alerts, the
hospital's follow-up plans, and the last weeks of follow-up work.

The archive's demo history ends at a fixed anchor (`patients.demo.data.ANCHOR`) so that a seed always gives
the same rows; follow-ups are about the last weeks, so this part records a few recent discharges and visits
as the HIS would send them (dated from today, the patients and departments chosen by the seed). The real
sweep then makes the tasks, and staff work part of those already due: calls that reach the patient and
complete the questionnaire, calls nobody answers, a few refusals, survey links answered by SMS.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

from auditlog.context import disable_auditlog
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils import timezone

from followups.builtin import hypertension, inpatient_satisfaction, outpatient_satisfaction, post_discharge
from followups.models import (
    Alert,
    AssigneeKind,
    DiagnosisSystem,
    FollowUpChannel,
    FollowUpPlan,
    FollowUpTask,
    Questionnaire,
    TaskStatus,
    TriggerKind,
)
from followups.scoring import walk
from followups.selectors import task_initial_answers
from followups.services import (
    builtin_questionnaires_load,
    followup_link_answer,
    followup_link_send,
    followups_sweep,
    plan_save,
    response_save,
    task_call_record,
    task_precheck,
)
from followups.services.plans import LATE_LIMIT_DAYS
from hcrm.models import Department, StaffDepartment
from hcrm.roles import Role
from patients.demo import data
from patients.demo.load import demo_extension
from patients.models import CodeSystem, ContactOutcome, Diagnosis, Encounter, Patient
from patients.services.archive import record_create

# Post-discharge answers with red flags (fever, chest pain) and a wish to be seen.
RED_FLAG_ANSWERS = {
    "recovery": "worse",
    "has_symptoms": True,
    "symptoms": ["fever", "chest_pain"],
    "medication": "as_prescribed",
    "wants_visit": True,
    "visit_reason": "发热两天",
}
DEMO_ALERTS = 2
DEMO_DOCTOR = "doctor"
DEMO_NURSE = "nurse"

# The recent encounters: tagged by their external ids, so a second run finds them and adds none.
EXTERNAL_PREFIX = "FUDEMO-"
DISCHARGES = 60
VISITS = 180
HYPERTENSION_VISITS = 16
# Discharges of the demo nurse's department this many days ago: her post-discharge calls due today.
NURSE_DUE_TODAY = (3, 3, 7, 7, 30)
# Hypertension visits of the demo doctor this many days ago: check-ups due today (30-day offset).
DOCTOR_DUE_TODAY = (30, 30, 30)
# At most this many due tasks of each plan are worked, so the demo loads in seconds on any day.
WORKED_PER_PLAN = 100

PLANS = (
    {
        "name": "出院随访",
        "trigger": TriggerKind.DISCHARGE,
        "offsets": [3, 7, 30],
        "questionnaire": post_discharge.CODE,
        "channel": FollowUpChannel.PHONE,
        "assignee_role": Role.NURSE,
    },
    {
        "name": "门诊满意度",
        "trigger": TriggerKind.OUTPATIENT_VISIT,
        "offsets": [1],
        "questionnaire": outpatient_satisfaction.CODE,
        "channel": FollowUpChannel.SMS,
        "assignee_role": Role.NURSE,
    },
    {
        "name": "住院满意度",
        "trigger": TriggerKind.DISCHARGE,
        "offsets": [7],
        "questionnaire": inpatient_satisfaction.CODE,
        "channel": FollowUpChannel.PHONE,
        "assignee_role": Role.NURSE,
    },
    {
        "name": "内科出院信函随访",
        "trigger": TriggerKind.DISCHARGE,
        "department": "NK",
        "offsets": [30],
        "questionnaire": post_discharge.CODE,
        "channel": FollowUpChannel.LETTER,
        "assignee_role": Role.NURSE,
    },
    {
        "name": "高血压随访",
        "trigger": TriggerKind.DIAGNOSIS,
        "diagnosis_code_prefix": "I10",
        "diagnosis_system": DiagnosisSystem.WESTERN,
        "offsets": [30, 90],
        "questionnaire": hypertension.CODE,
        "channel": FollowUpChannel.PHONE,
        "assignee_kind": AssigneeKind.ATTENDING,
    },
)

COMMENTS_PRAISE = (
    "医生很耐心，解释得很清楚，谢谢！",
    "护士态度很好，服务周到。",
    "中药代煎送到家里，很方便。",
    "针灸效果明显，腰痛好多了。",
    "环境干净整洁，导诊热情。",
)
COMMENTS_COMPLAINT = (
    "候诊时间太长，等了一个多小时。",
    "取药排队太久，希望多开几个窗口。",
    "停车太难了。",
    "收费项目没有解释清楚。",
    "病房晚上比较吵，休息不好。",
)


def _demo_alerts() -> int:
    """Post-discharge answers with red flags from a couple of discharged patients, unless alerts exist."""
    if Alert.objects.exists():
        return 0
    version = Questionnaire.objects.get(code=post_discharge.CODE).current_version
    discharged = Encounter.objects.filter(
        kind=Encounter.Kind.INPATIENT, ended_at__isnull=False, doctor__isnull=False
    ).select_related("patient")
    # One for the demo doctor's sign-in (if the demo doctor attended a stay), the rest for colleagues.
    own = list(discharged.filter(doctor__username=DEMO_DOCTOR).order_by("-ended_at", "pk")[:1])
    others = discharged.exclude(doctor__username=DEMO_DOCTOR).order_by("-ended_at", "pk")
    stays = own + list(others[: DEMO_ALERTS - len(own)])
    for stay in stays:
        response_save(version=version, patient=stay.patient, answers=RED_FLAG_ANSWERS, source="phone", complete=True)
    return Alert.objects.count()


def _plans_ensure() -> int:
    """The demo's plans, each saved through `plan_save` unless a plan of that name exists; how many are new."""
    existing = set(
        FollowUpPlan.objects.filter(name__in=[spec["name"] for spec in PLANS]).values_list("name", flat=True)
    )
    questionnaires = {q.code: q for q in Questionnaire.objects.filter(code__in={s["questionnaire"] for s in PLANS})}
    created = 0
    for spec in PLANS:
        if spec["name"] in existing:
            continue
        fields = {**spec, "questionnaire": questionnaires[spec["questionnaire"]]}
        if "department" in spec:
            fields["department"] = Department.objects.get(code=spec["department"])
        plan_save(actor=None, data=fields)
        created += 1
    return created


def _doctors_by_department() -> dict[str, list]:
    doctors: dict[str, list] = {}
    memberships = (
        StaffDepartment.objects.filter(user__groups__name=Role.DOCTOR, user__is_active=True)
        .select_related("user", "department")
        .order_by("department__code", "user__username")
    )
    for membership in memberships:
        doctors.setdefault(membership.department.code, []).append((membership.department, membership.user))
    return doctors


def _encounter(
    rng: random.Random, patient: Patient, *, number: int, kind: str, department, doctor, start: dt.datetime, end
) -> Encounter:
    return record_create(
        actor=None,
        model=Encounter,
        patient=patient,
        data={
            "uuid": uuid.UUID(int=rng.getrandbits(128), version=4),
            "source_system": data.SOURCE_SYSTEM,
            "external_id": f"{EXTERNAL_PREFIX}{number:05d}",
            "kind": kind,
            "status": Encounter.Status.FINISHED,
            "encounter_number": f"{EXTERNAL_PREFIX}{number:05d}",
            "department": department,
            "doctor": doctor,
            "doctor_name": doctor.full_name,
            "ward": f"{department.name}病区" if kind == Encounter.Kind.INPATIENT else "",
            "started_at": start,
            "ended_at": end,
        },
    )


def _recent_encounters_ensure(rng: random.Random, today: dt.date) -> int:
    """Discharges of the last five weeks, outpatient visits of the last three, hypertension visits a month ago."""
    if Encounter.objects.filter(source_system=data.SOURCE_SYSTEM, external_id__startswith=EXTERNAL_PREFIX).exists():
        return 0
    patients = list(Patient.objects.filter(is_deceased=False, merged_into__isnull=True).order_by("pk")[:5000])
    doctors = _doctors_by_department()
    if not patients or "NK" not in doctors:
        return 0
    zone = timezone.get_default_timezone()

    def at(days_ago: int, hour: int) -> dt.datetime:
        return dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(hour, rng.randrange(60)), tzinfo=zone)

    internal = doctors["NK"]
    demo_doctor = next(((d, user) for d, user in internal if user.username == DEMO_DOCTOR), internal[0])
    stays = [(days, rng.choice(internal)) for days in NURSE_DUE_TODAY]
    stays += [(rng.randint(1, 35), rng.choice(doctors[rng.choice(sorted(doctors))])) for _ in range(DISCHARGES)]
    number = 0
    for days, (department, doctor) in stays:
        number += 1
        end = at(days, rng.randint(9, 11))
        start = end - dt.timedelta(days=rng.randint(3, 14), hours=rng.randint(0, 6))
        _encounter(rng, rng.choice(patients), number=number, kind=Encounter.Kind.INPATIENT, department=department,
                   doctor=doctor, start=start, end=end)  # fmt: skip
    for _ in range(VISITS):
        number += 1
        department, doctor = rng.choice(doctors[rng.choice(sorted(doctors))])
        start = at(rng.randint(1, 21), rng.choice((8, 9, 10, 14, 15, 16)))
        _encounter(rng, rng.choice(patients), number=number, kind=Encounter.Kind.OUTPATIENT, department=department,
                   doctor=doctor, start=start, end=start + dt.timedelta(minutes=rng.randint(8, 25)))  # fmt: skip
    visits = [(days, demo_doctor) for days in DOCTOR_DUE_TODAY]
    visits += [(rng.randint(31, 55), rng.choice(internal)) for _ in range(HYPERTENSION_VISITS - len(visits))]
    for days, (department, doctor) in visits:
        number += 1
        start = at(days, rng.choice((9, 10, 15)))
        patient = rng.choice(patients)
        visit = _encounter(rng, patient, number=number, kind=Encounter.Kind.OUTPATIENT, department=department,
                           doctor=doctor, start=start, end=start + dt.timedelta(minutes=15))  # fmt: skip
        record_create(
            actor=None,
            model=Diagnosis,
            patient=patient,
            data={
                "uuid": uuid.UUID(int=rng.getrandbits(128), version=4),
                "source_system": data.SOURCE_SYSTEM,
                "external_id": f"{EXTERNAL_PREFIX}{number:05d}",
                "encounter": visit,
                "system": CodeSystem.ICD10,
                "code": "I10.X00",
                "name": "原发性高血压",
                "is_primary": True,
                "diagnosed_at": start,
                "doctor": doctor,
            },
        )
    return number


# --- Answers ---------------------------------------------------------------------------------------


def _satisfaction_answers(rng: random.Random, items: list[dict], start: dict) -> dict:
    """Mostly satisfied patients (4–5), some lukewarm, a few unhappy; comments now and then."""
    mood = rng.random()
    scale, recommend = (
        ((4, 5, 5), (8, 10)) if mood < 0.75 else ((3, 4, 5), (6, 9)) if mood < 0.93 else ((1, 2, 3), (0, 6))
    )
    answers = dict(start)
    for item in walk(items):
        link = item["linkId"]
        if link == "recommend":
            answers[link] = str(rng.randint(*recommend))
        elif item["type"] == "choice":
            answers[link] = str(rng.choice(scale))
        elif item["type"] == "boolean":
            answers[link] = rng.random() < 0.4
    if rng.random() < 0.3:
        answers["comments"] = rng.choice(COMMENTS_PRAISE if mood < 0.75 else COMMENTS_COMPLAINT)
    return answers


def _post_discharge_answers(rng: random.Random) -> dict:
    unwell = rng.random() < 0.15
    answers = {
        "recovery": rng.choice(("same", "worse")) if unwell else rng.choice(("much_better", "better", "better")),
        "has_symptoms": unwell,
        "medication": "as_prescribed" if rng.random() < 0.8 else "sometimes_missed",
        "diet": rng.choice(("yes", "yes", "partly")),
        "exercise": rng.choice(("normal", "light")),
        "wants_visit": unwell and rng.random() < 0.5,
    }
    if unwell:
        answers["symptoms"] = [rng.choice(("poor_sleep", "poor_appetite", "fatigue"))]
    if answers["wants_visit"]:
        answers["visit_reason"] = rng.choice(("睡眠不好，想复诊调方。", "胃口差，乏力。"))
    return answers


def _hypertension_answers(rng: random.Random) -> dict:
    controlled = rng.random() < 0.7
    return {
        "sbp": rng.randint(118, 138) if controlled else rng.randint(142, 165),
        "dbp": rng.randint(72, 88) if controlled else rng.randint(90, 102),
        "heart_rate": rng.randint(62, 88),
        "danger_signs": ["none"],
        "symptoms": ["none"] if controlled else ["headache_dizziness"],
        "salt": rng.choice(("light", "moderate")),
        "adherence": "regular" if controlled else rng.choice(("regular", "intermittent")),
        "adverse_reaction": False,
        "classification": "controlled" if controlled else "uncontrolled",
        "referral": False,
    }


def _answers(rng: random.Random, task: FollowUpTask) -> dict:
    code = task.questionnaire.code
    if code in (outpatient_satisfaction.CODE, inpatient_satisfaction.CODE):
        return _satisfaction_answers(rng, task.questionnaire.current_version.items, task_initial_answers(task))
    if code == hypertension.CODE:
        return _hypertension_answers(rng)
    return _post_discharge_answers(rng)


# --- Working the due tasks -------------------------------------------------------------------------


def _worker(task: FollowUpTask, staff: dict[tuple[int, str], list]):
    if task.assignee_id is not None:
        return task.assignee
    colleagues = staff.get((task.department_id, task.assignee_role))
    return colleagues[task.pk % len(colleagues)] if colleagues else None


def _tasks_work(rng: random.Random, plans: list[FollowUpPlan], today: dt.date) -> dict[str, int]:
    """Work part of the tasks due before today, as staff would; nothing when any of them was worked before."""
    tally = {"completed": 0, "unreached": 0, "refused": 0}
    of_plans = FollowUpTask.objects.filter(plan__in=plans)
    if of_plans.exclude(status=TaskStatus.PENDING).exists():
        return tally
    staff: dict[tuple[int, str], list] = {}
    memberships = StaffDepartment.objects.filter(user__is_active=True).select_related("user")
    for membership in memberships.order_by("department_id", "user__username"):
        for role in membership.user.role_codes:
            staff.setdefault((membership.department_id, role), []).append(membership.user)
    for plan in plans:
        if plan.channel == FollowUpChannel.LETTER:
            continue  # left for the letters page to print
        due = (
            of_plans.filter(plan=plan, due_date__lt=today)
            .select_related("patient", "plan", "questionnaire__current_version", "department", "assignee")
            .order_by("due_date", "pk")[:WORKED_PER_PLAN]
        )
        for task in due:
            draw = rng.random()
            if draw >= 0.8 or task_precheck(task=task):
                continue
            if plan.channel == FollowUpChannel.SMS:
                try:
                    link = followup_link_send(task=task)
                except ValidationError:
                    continue  # no message template for the channel: the patient is not asked
                if draw < 0.65:
                    followup_link_answer(link=link, answers=_answers(rng, task), complete=True)
                    tally["completed"] += 1
                continue
            worker = _worker(task, staff)
            if worker is None:
                continue
            outcome = ContactOutcome.REACHED if draw < 0.6 else ContactOutcome.NO_ANSWER
            outcome = ContactOutcome.REFUSED if draw >= 0.76 else outcome
            answers = _answers(rng, task) if outcome == ContactOutcome.REACHED else {}
            task_call_record(task=task, actor=worker, outcome=outcome, notes="", answers=answers)
            tally[
                {ContactOutcome.REACHED: "completed", ContactOutcome.NO_ANSWER: "unreached"}.get(outcome, "refused")
            ] += 1
    return tally


@demo_extension
def followups_demo_ensure(*, seed: int) -> str:
    """The built-in questionnaires and alert rules, a couple of alerts, the hospital's follow-up plans, recent
    discharges and visits swept into tasks, and part of the due ones worked."""
    today = timezone.localdate()
    rng = random.Random(f"{seed}:followups")  # noqa: S311 (demo data, not secrets)
    outcomes = builtin_questionnaires_load()
    alerts = _demo_alerts()
    # Like the rest of the demo, written without an audit entry per row: nobody did it.
    with disable_auditlog():
        encounters = _recent_encounters_ensure(rng, today)
        plans_created = _plans_ensure()
        plans = list(FollowUpPlan.objects.filter(name__in=[spec["name"] for spec in PLANS]).order_by("pk"))
        longest = max(offset for plan in plans for offset in plan.offsets)
        since = timezone.now() - dt.timedelta(days=LATE_LIMIT_DAYS + longest + 1)
        tasks = followups_sweep(since=since, today=today)
        worked = _tasks_work(rng, plans, today)
    counts = FollowUpTask.objects.filter(plan__in=plans).aggregate(
        total=Count("pk"), completed=Count("pk", filter=Q(status=TaskStatus.COMPLETED))
    )
    return (
        f"{outcomes['created']} built-in questionnaires created ({sum(outcomes.values())} in all), "
        f"{alerts} alerts raised; {plans_created} follow-up plans, {encounters} recent encounters and {tasks} tasks "
        f"created, {worked['completed']} completed, {worked['unreached']} unanswered and {worked['refused']} "
        f"refused calls ({counts['total']} tasks, {counts['completed']} completed in all)"
    )
