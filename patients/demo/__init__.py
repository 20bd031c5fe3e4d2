"""A deterministic demo hospital: a TCM hospital in Guangzhou with its staff, patients and clinical record.

`data` holds the reference data (names, regions, departments, diagnoses, formulas, lab panels),
`generate` turns a seed into rows without touching the database, and `load` writes them in bulk.
The `seed_demo` management command ties the three together.
"""
