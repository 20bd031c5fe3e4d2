"""Message templates of follow-up links: the email link, and the reminder by SMS and email."""

from django.db import migrations

TEMPLATES = [
    # code, name, purpose, channel, language, subject, body
    ("follow_up_link", "随访问卷", "follow_up", "email", "zh-hans", "{hospital_name}随访问卷",
     "{patient_salutation}，您好：\n\n请点击以下链接填写随访问卷：\n{link}\n\n{hospital_name}"),
    ("follow_up_link", "Follow-up questionnaire", "follow_up", "email", "en", "A follow-up questionnaire from {hospital_name}",
     "Dear {patient_salutation},\n\nPlease answer our follow-up questionnaire:\n{link}\n\n{hospital_name}"),
    ("follow_up_reminder", "随访问卷提醒", "follow_up", "sms", "zh-hans", "",
     "【{hospital_name}】{patient_salutation}，您的随访问卷尚未完成，请点击链接继续填写：{link}"),
    ("follow_up_reminder", "Follow-up reminder", "follow_up", "sms", "en", "",
     "[{hospital_name}] {patient_salutation}, your follow-up questionnaire is not finished yet: {link}"),
    ("follow_up_reminder", "随访问卷提醒", "follow_up", "email", "zh-hans", "{hospital_name}随访问卷提醒",
     "{patient_salutation}，您好：\n\n您的随访问卷尚未完成，请点击以下链接继续填写：\n{link}\n\n{hospital_name}"),
    ("follow_up_reminder", "Follow-up reminder", "follow_up", "email", "en", "Reminder: your follow-up questionnaire",
     "Dear {patient_salutation},\n\nYour follow-up questionnaire is not finished yet:\n{link}\n\n{hospital_name}"),
]


def add_templates(apps, schema_editor):
    import uuid

    MessageTemplate = apps.get_model("patients", "MessageTemplate")
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
    dependencies = [("followups", "0004_followup_links"), ("patients", "0003_default_message_templates")]

    operations = [migrations.RunPython(add_templates, remove_templates)]
