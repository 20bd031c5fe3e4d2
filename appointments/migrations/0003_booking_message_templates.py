"""Built-in templates for booking messages, so confirmations and notices work out of the box."""

import uuid

from django.db import migrations

TEMPLATES = [
    # code, name, channel, language, body
    ("appointment_confirmed", "预约成功", "zh-hans",
     "【{hospital_name}】{patient_salutation}，您已预约{appointment_time}{department_name}{doctor_name}，"
     "就诊序号{visit_number}，地点{appointment_place}。请按时就诊。"),
    ("appointment_confirmed", "Appointment booked", "en",
     "[{hospital_name}] {patient_salutation}, you are booked with {doctor_name} ({department_name}) at "
     "{appointment_time}, number {visit_number}, {appointment_place}."),
    ("appointment_cancelled", "预约已取消", "zh-hans",
     "【{hospital_name}】{patient_salutation}，您{appointment_time}{department_name}{doctor_name}的预约已取消。"),
    ("appointment_cancelled", "Appointment cancelled", "en",
     "[{hospital_name}] {patient_salutation}, your appointment with {doctor_name} at {appointment_time} "
     "is cancelled."),
    ("appointment_rescheduled", "预约已改期", "zh-hans",
     "【{hospital_name}】{patient_salutation}，您的预约已改至{appointment_time}{department_name}{doctor_name}，"
     "就诊序号{visit_number}。"),
    ("appointment_rescheduled", "Appointment moved", "en",
     "[{hospital_name}] {patient_salutation}, your appointment is moved to {appointment_time} with "
     "{doctor_name} ({department_name}), number {visit_number}."),
    ("schedule_stopped", "停诊通知", "zh-hans",
     "【{hospital_name}】{patient_salutation}，很抱歉，{doctor_name}{appointment_time}停诊，您的预约已取消。"
     "重新预约请点击：{link}"),
    ("schedule_stopped", "Clinic cancelled", "en",
     "[{hospital_name}] {patient_salutation}, we are sorry: {doctor_name}'s clinic at {appointment_time} "
     "is cancelled, and so is your appointment. Book another time: {link}"),
    ("waitlist_offer", "候补成功通知", "zh-hans",
     "【{hospital_name}】{patient_salutation}，您候补的{appointment_time}{doctor_name}有空位，"
     "请在{expires_minutes}分钟内确认：{link}"),
    ("waitlist_offer", "Waitlist place", "en",
     "[{hospital_name}] {patient_salutation}, a place with {doctor_name} at {appointment_time} is free "
     "for you. Confirm within {expires_minutes} minutes: {link}"),
]


def add_templates(apps, schema_editor):
    MessageTemplate = apps.get_model("patients", "MessageTemplate")
    for code, name, language, body in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            code=code,
            channel="sms",
            language=language,
            defaults={"uuid": uuid.uuid4(), "name": name, "purpose": "appointment", "body": body},
        )


def remove_templates(apps, schema_editor):
    MessageTemplate = apps.get_model("patients", "MessageTemplate")
    for code, _name, language, _body in TEMPLATES:
        MessageTemplate.objects.filter(code=code, channel="sms", language=language).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("appointments", "0002_schedules_slots_bookings_portal"),
        ("patients", "0003_default_message_templates"),
    ]

    operations = [migrations.RunPython(add_templates, remove_templates)]
