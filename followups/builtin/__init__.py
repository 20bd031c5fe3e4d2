"""The questionnaires HCRM ships with, as data in the stored format (FHIR R4 items + scoring rules).

`load_questionnaires` writes them to the database; `BUILTINS` lists their definitions by code.
"""

from __future__ import annotations

from followups.builtin import (
    constitution,
    diabetes,
    hypertension,
    inpatient_satisfaction,
    outpatient_satisfaction,
    post_discharge,
)

BUILTINS: dict[str, dict] = {
    module.CODE: module.DEFINITION
    for module in (
        outpatient_satisfaction,
        inpatient_satisfaction,
        post_discharge,
        hypertension,
        diabetes,
        constitution,
    )
}
