"""HL7 v2 messages as a Chinese HIS sends them, built for tests."""

from __future__ import annotations

from tests.factories import national_id as _national_id  # noqa: F401  (re-exported for tests)


def message(
    *segments: str,
    control_id: str = "MSG0001",
    trigger: str = "ADT^A01",
    charset: str = "UNICODE UTF-8",
    version: str = "2.5",
    sender: str = "HIS|TCMH",
) -> str:
    msh = f"MSH|^~\\&|{sender}|HCRM|TCMH|20250301083000||{trigger}|{control_id}|P|{version}|||AL|NE|CHN|{charset}"
    return "\r".join([msh, *segments]) + "\r"


def pid(
    mrn: str = "H0001",
    name: str = "王^小明",
    *,
    birth: str = "19800102",
    sex: str = "1",
    extra_ids: str = "",
    phone: str = "^PRN^CP^^^^^^^^^13800138000",
) -> str:
    ids = f"{mrn}^^^TCMH^MR" + (f"~{extra_ids}" if extra_ids else "")
    return f"PID|1||{ids}||{name}||{birth}|{sex}|||人民路1号^^杭州市^浙江省^310000^CHN^H||{phone}"


def pv1(
    visit: str = "V0001",
    *,
    patient_class: str = "I",
    department: str = "0301",
    admitted: str = "20250301080000",
    discharged: str = "",
    doctor: str = "D0012^李^时珍",
    location: str = "NKBQ^0301^01",
) -> str:
    fields = ["PV1", "1", patient_class, location, "", "", "", doctor, "", "", department]
    fields += [""] * 8 + [visit]
    fields += [""] * (43 - len(fields) + 1) + [admitted, discharged]
    return "|".join(fields)


def adt(
    control_id: str = "MSG0001", *, trigger: str = "A01", segments: tuple[str, ...] | None = None, **kwargs
) -> bytes:
    body = segments if segments is not None else (f"EVN|{trigger}|20250301083000", pid(), pv1())
    return message(*body, control_id=control_id, trigger=f"ADT^{trigger}", **kwargs).encode("utf-8")
