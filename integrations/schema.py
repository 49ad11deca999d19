"""The API key as the OpenAPI schema describes it (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key made in admin (API keys): `Authorization: Bearer sbk_…`.",
        }


ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
INVALID = {
    "type": "object",
    "description": "Each field in error, with what is wrong with it (by field, or by item, when it nests).",
    "additionalProperties": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]},
}
ERRORS = [
    (
        "400",
        "The query or body is not what the schema says, or a page cursor the API did not write: each field "
        "with what is wrong (`detail` alone when the body cannot be read at all).",
        {"anyOf": [INVALID, ERROR]},
    ),
    ("401", "No API key or session, or a key that is unknown or revoked.", ERROR),
    ("403", "The key lacks the endpoint's scope, or the user the permission.", ERROR),
    ("404", "Not one of the caller's, or not there at all.", ERROR),
    ("413", "The body is larger than the server takes (`code` request_too_large).", ERROR),
    ("429", "The key is over its rate limit: see Retry-After.", ERROR),
]


def document_errors(result: dict, generator, request, public) -> dict:
    """Every operation of /api/v1/ says how it fails, and a write's body is required (a
    drf-spectacular postprocessing hook: a body of several kinds, such as a message's, is not
    marked required by itself)."""
    for methods in result["paths"].values():
        for operation in methods.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
            responses = operation.setdefault("responses", {})
            for status, description, body in ERRORS:
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": body}}}
                )
    return result
