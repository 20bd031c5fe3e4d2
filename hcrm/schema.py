"""OpenAPI descriptions of HCRM's own authentication schemes (drf-spectacular extensions)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "hcrm.rest.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A staff member's token from `POST /api/v1/auth/token/`.",
        }


class IntegrationKeyScheme(OpenApiAuthenticationExtension):
    target_class = "hcrm.rest.IntegrationKeyAuthentication"
    name = "integrationKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>` for another system; the key's scopes limit what it may do.",
        }
