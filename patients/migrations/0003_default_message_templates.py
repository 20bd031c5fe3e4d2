"""Built-in message templates, so the outbox works out of the box; administrators may edit them."""

from django.db import migrations

TEMPLATES = [
    # code, name, purpose, channel, language, subject, body
    ("general_notice", "通知", "care", "sms", "zh-hans", "",
     "【{hospital_name}】{patient_salutation}，{content}"),
    ("general_notice", "Notice", "care", "sms", "en", "",
     "[{hospital_name}] Dear {patient_salutation}, {content}"),
    ("general_notice", "通知", "care", "email", "zh-hans", "{hospital_name}通知",
     "{patient_salutation}，您好：\n\n{content}\n\n{hospital_name}"),
    ("general_notice", "Notice", "care", "email", "en", "A message from {hospital_name}",
     "Dear {patient_salutation},\n\n{content}\n\n{hospital_name}"),
    ("verification_code", "验证码", "verification", "sms", "zh-hans", "",
     "【{hospital_name}】您的验证码是{code}，{expires_minutes}分钟内有效，请勿告诉他人。"),
    ("verification_code", "Verification code", "verification", "sms", "en", "",
     "[{hospital_name}] Your code is {code}, valid for {expires_minutes} minutes. Do not share it."),
    ("appointment_reminder", "就诊提醒", "appointment", "sms", "zh-hans", "",
     "【{hospital_name}】{patient_salutation}，提醒您于{appointment_time}到{department_name}就诊（{doctor_name}，"
     "序号{visit_number}）。如需取消请提前联系{hospital_phone}。"),
    ("appointment_reminder", "Appointment reminder", "appointment", "sms", "en", "",
     "[{hospital_name}] {patient_salutation}, your appointment is at {appointment_time} in {department_name} "
     "with {doctor_name} (number {visit_number}). To cancel, call {hospital_phone}."),
    ("follow_up_link", "随访问卷", "follow_up", "sms", "zh-hans", "",
     "【{hospital_name}】{patient_salutation}，您好！请点击链接填写随访问卷：{link}"),
    ("follow_up_link", "Follow-up questionnaire", "follow_up", "sms", "en", "",
     "[{hospital_name}] {patient_salutation}, please answer our follow-up questionnaire: {link}"),
    ("health_education", "健康宣教", "care", "sms", "zh-hans", "",
     "【{hospital_name}】{content} 回复TD退订"),
    ("health_education", "Health education", "care", "sms", "en", "",
     "[{hospital_name}] {content} Reply STOP to opt out."),
]


def add_templates(apps, schema_editor):
    MessageTemplate = apps.get_model("patients", "MessageTemplate")
    import uuid

    for code, name, purpose, channel, language, subject, body in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            code=code, channel=channel, language=language,
            defaults={"uuid": uuid.uuid4(), "name": name, "purpose": purpose, "subject": subject, "body": body},
        )


def remove_templates(apps, schema_editor):
    MessageTemplate = apps.get_model("patients", "MessageTemplate")
    for code, _name, _purpose, channel, language, _subject, _body in TEMPLATES:
        MessageTemplate.objects.filter(code=code, channel=channel, language=language).delete()


class Migration(migrations.Migration):
    dependencies = [("patients", "0002_outreach_contacts_outbox")]

    operations = [migrations.RunPython(add_templates, remove_templates)]
