"""FHIR R4: the REST facade under /fhir/R4/ (transaction and batch bundles, Patient create/update,
read and search, Patient/$everything, CapabilityStatement) and the pull sync from remote FHIR servers.

See docs/fhir.md for what is accepted, what is skipped, and why.
"""
