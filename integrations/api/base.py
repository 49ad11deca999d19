"""The REST API of the CRM (`/api/v1/`). It reads contacts, calls with their transcripts, summaries
and recordings, messages, charges, whether a number may call a contact now, and the agents' live
state; it places calls, asks customers' permission to call them and sends messages.

Every endpoint answers only about the caller's business numbers (an API key's, or the signed-in
user's queues'; supervisors see all): another business's rows are 404, as if they did not exist.
Transcripts, summaries and messages come with card numbers, national ids, emails and phone numbers
masked, unless the caller may read them raw (the `admin` scope, or the permission for a signed-in
user).

Writes answer 201 with what they did, or say why not with a `code` the CRM can branch on and a
`detail` for people: 409 when a rule refuses it now (compliance, the agent busy, the messaging
window), 422 when a value names nothing usable (an unparseable number, an agent who does not serve
the number, an unknown template), 502 when WhatsApp did not take it; a body that is not what the
schema says is 400, each field with what is wrong. Every write is recorded (`ApiWrite`) with its
answer, refusals included, and the answer carries the record's `X-Request-Id`.
"""

import base64
from urllib import parse

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import RegexValidator
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiResponse,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import Viewer, viewer_of
from core.signins import client_address
from integrations.authentication import HasScope
from integrations.models import ApiKey, ApiWrite
from messaging.services import customer_wa_id_from_text
from whatsapp.errors import GraphAPIError
from whatsapp.models import BusinessNumber

# Not recorded as writes: a request with no caller to attribute it to, and a key over its rate
# (a row each would undo what the limit protects).
UNRECORDED_STATUSES = frozenset({401, 429})


class Refused(Exception):
    """The API understood the request and will not carry it out: the answer's status, a `code` the
    CRM can branch on, a sentence for people (`detail`), and whatever else explains it."""

    def __init__(self, status: int, code: str, detail: str, **extra) -> None:
        super().__init__(detail)
        self.status_code = status
        self.body = {"code": code, "detail": detail, **extra}


class ApiView(APIView):
    """An endpoint of the CRM API: a key with `required_scope` (`write_scope` for the methods that
    change something, where it has its own), or a signed-in dashboard user.

    A request that asks for a change runs in one transaction with its `ApiWrite` row, whatever the
    answer (the row says who asked what, and how it was answered); `operations` names what each such
    method does, and the view `note`s the ids it acted on.
    """

    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ
    write_scope: str | None = None
    operations: dict[str, str] = {}

    def caller(self) -> Viewer:
        if not hasattr(self, "_caller"):
            self._caller = viewer_of(self.request)
        return self._caller

    def dispatch(self, request, *args, **kwargs):
        self.target: dict[str, int] = {}
        if request.method in SAFE_METHODS:
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs) -> None:
        if request.method not in SAFE_METHODS and self.write_scope:
            self.required_scope = self.write_scope  # what HasScope checks
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, Refused):
            return Response(exc.body, status=exc.status_code)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in SAFE_METHODS and response.status_code not in UNRECORDED_STATUSES:
            write = _write_record(
                request, response, operation=self.operations.get(request.method, ""), target=self.target
            )
            response["X-Request-Id"] = str(write.request_id)
        return response

    def query(self, serializer_class: type[serializers.Serializer]) -> dict:
        """The query string as `serializer_class` reads it (400 with each field's problem otherwise)."""
        query = serializer_class(data=query_of(self.request))
        query.is_valid(raise_exception=True)
        return query.validated_data

    def page(self, rows, *, ordering: tuple[str, ...], serializer, row=None) -> Response:
        """A cursor page of the queryset `rows` in `ordering`: each row as `serializer` writes
        `row(it)` (the row itself without `row`)."""
        paginator = Page()
        paginator.ordering = ordering
        page = paginator.paginate_queryset(rows, self.request, view=self)
        return paginator.get_paginated_response(
            serializer([row(it) for it in page] if row else page, many=True).data
        )

    def note(self, **ids: int) -> None:
        """What the request acts on, for its ApiWrite row: `note(contact=…, call=…)`."""
        self.target.update(ids)

    def business_number(self, number_id: int) -> BusinessNumber:
        """One of the caller's numbers; any other is 404, as if it did not exist."""
        number = BusinessNumber.objects.filter(pk__in=self.caller().number_ids, pk=number_id).first()
        if number is None:
            raise NotFound("No such business number.")
        self.note(business_number=number.pk)
        return number


def _write_record(request, response, *, operation: str, target: dict) -> ApiWrite:
    is_key = isinstance(request.auth, ApiKey)
    user = request.user if not is_key and getattr(request.user, "pk", None) else None
    return ApiWrite.objects.create(
        at=timezone.now(),
        key=request.auth if is_key else None,
        user=user,
        method=request.method,
        path=request.path[:255],
        operation=operation,
        status_code=response.status_code,
        target=target,
        refusal_code=_refusal_code(response)[:255],
        client_ip=client_address(request),
    )


def _refusal_code(response) -> str:
    """Why a write was refused: the rules that refused a call, the answer's `code`, or DRF's own
    (permission_denied, not_found, parse_error, …; `invalid` for fields in error)."""
    if response.status_code < 400:
        return ""
    data = getattr(response, "data", None)
    if not isinstance(data, dict):
        return "invalid"
    if data.get("refusals"):
        return ",".join(refusal["code"] for refusal in data["refusals"])
    if isinstance(data.get("code"), str):
        return data["code"]
    if "detail" in data:
        return getattr(data["detail"], "code", "") or "error"
    return "invalid"


def query_of(request) -> dict[str, str]:
    """The request's query string, a value a parameter. Every parameter of the API takes one value:
    one given twice is refused (400), not read as its last value."""
    repeated = {
        name: ["Given more than once: give one value."]
        for name, values in request.query_params.lists()
        if len(values) > 1
    }
    if repeated:
        raise serializers.ValidationError(repeated)
    return request.query_params.dict()


class IdField(serializers.IntegerField):
    """A row's id in a query or a body: a positive 64-bit integer (anything larger is a 400, not a
    database error)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(min_value=1, max_value=2**63 - 1, **kwargs)


class TextField(serializers.CharField):
    """Text in a body, as the schema says: a number or a boolean is refused (400), not turned into
    text as DRF's CharField does. Text that may not be blank has, in the schema too, a character
    that is not whitespace (the field trims it: "  " is blank)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.allow_blank and self.trim_whitespace:
            self.validators.append(NOT_ONLY_WHITESPACE)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# Whitespace as the field trims it (str.strip: what str.isspace calls whitespace), spelled out:
# a schema's `\S` is JavaScript's, which calls \x1c-\x1f and \x85 text and \ufeff whitespace.
TRIMMED_WHITESPACE = (
    r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
NOT_ONLY_WHITESPACE = RegexValidator(f"[^{TRIMMED_WHITESPACE}]", "Enter a character that is not whitespace.")


def filtered(rows, wanted: dict, lookups: dict[str, str]):
    """`rows` narrowed by each filter `wanted` names: `lookups` maps a filter to its field lookup."""
    for name, lookup in lookups.items():
        if name in wanted:
            rows = rows.filter(**{lookup: wanted[name]})
    return rows


class Page(CursorPagination):
    """Cursor pages; a cursor that is not one this API wrote (altered, or not base64 of a cursor
    at all) is a 400 that says so, never a database error."""

    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            text = base64.b64decode(encoded.encode("ascii"), validate=True).decode("ascii") if encoded else ""
            tokens = parse.parse_qs(text, keep_blank_values=True, strict_parsing=True) if text else {}
            cursor = super().decode_cursor(request)
        except (ValueError, UnicodeError, NotFound):  # binascii.Error is a ValueError
            raise _bad_cursor() from None
        if set(tokens) - {"o", "r", "p"} or any(len(values) != 1 for values in tokens.values()):
            raise _bad_cursor()
        if cursor is None or cursor.position is None:
            return cursor
        try:
            field = self.model._meta.get_field(self.ordering[0].lstrip("-"))
        except FieldDoesNotExist:  # an annotation: nothing to check it against
            return cursor
        try:
            field.get_prep_value(field.to_python(cursor.position))
        except (ValidationError, ValueError, TypeError, OverflowError):
            raise _bad_cursor() from None
        return cursor


def _bad_cursor() -> serializers.ValidationError:
    return serializers.ValidationError(
        {"cursor": ["This cursor is not valid: take it from a page's `next` or `previous` link."]}
    )


class PageSerializer(serializers.Serializer):
    cursor = serializers.CharField(
        required=False, trim_whitespace=False, help_text="From a page's `next` or `previous` link."
    )
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


def paged(name: str, serializer: serializers.Serializer):
    """A cursor page of `serializer` rows, as the schema describes it."""
    return inline_serializer(
        name,
        {
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last."),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer,
        },
    )


class ProblemSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="What went wrong, for the CRM to branch on.")
    detail = serializers.CharField(help_text="The same, for people.")


class InvalidValueSerializer(ProblemSerializer):
    field = serializers.CharField(help_text="The input field whose value names nothing usable.")


class RefusalSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The rule, e.g. no_permission or unanswered_strikes.")
    reason = serializers.CharField()
    clears_at = serializers.DateTimeField(allow_null=True, help_text="When it stops refusing, if it will.")


class FallbackSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="permission_request, call_button, or empty when nothing else can be offered."
    )
    reason = serializers.CharField()


class DecisionWarningSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="What to beware of, e.g. last_unanswered_before_revocation (one more unanswered "
        "call and the customer's permission is revoked)."
    )
    text = serializers.CharField()


WARNINGS_HELP = "What to beware of if the call is placed, allowed or not."
ALLOWED_BECAUSE_HELP = (
    "What an allowed call rests on (the customer's permission: a permanent one is to be reviewed); "
    "empty when refused."
)


class CallRefusedSerializer(ProblemSerializer):
    refusals = RefusalSerializer(many=True, required=False, help_text="With call_refused: every rule.")
    fallback = FallbackSerializer(
        allow_null=True, required=False, help_text="With call_refused: what to offer."
    )
    warnings = DecisionWarningSerializer(
        many=True, required=False, help_text=f"With call_refused: {WARNINGS_HELP}"
    )
    allowed_because = serializers.CharField(
        required=False, allow_blank=True, help_text="With call_refused: empty."
    )


UNPROCESSABLE = OpenApiResponse(
    InvalidValueSerializer,
    description="A value names nothing usable, `field` says which: invalid_customer (not a phone number), "
    "invalid_agent (not serving the number), unknown_template, template (not approved), idempotency_key "
    "(used for another message, or header and body differ).",
)


class WhatsAppProblemSerializer(ProblemSerializer):
    whatsapp_code = serializers.IntegerField(
        allow_null=True, help_text="Meta's error code (e.g. 131026), or null when WhatsApp did not answer."
    )
    whatsapp_error = serializers.CharField(help_text="Meta's error as it came, for logs and support.")


WHATSAPP_FAILED = {
    502: OpenApiResponse(
        WhatsAppProblemSerializer,
        description="WhatsApp did not take it (whatsapp_error): `detail` says what Meta's error means, "
        "`whatsapp_code` and `whatsapp_error` are Meta's own.",
    )
}
TO_HELP = (
    "The customer's number: international (+44 7700 900123, or 447700900123 as WhatsApp writes it), "
    "or national with its leading 0 (07700 900123) in the business number's country."
)


def customer_wa_id(text: str, *, number: BusinessNumber) -> str:
    """The customer's WhatsApp id (E.164 digits) from a number as a CRM holds it: international, or
    national in the business number's country when it starts with its trunk 0; 422 when neither."""
    try:
        return customer_wa_id_from_text(text, business_number=number)
    except ValidationError:
        raise Refused(
            422,
            "invalid_customer",
            f"{text.strip()!r} is not a phone number: write it as +44 7700 900123.",
            field="to",
        ) from None


def refused_by_service(error: ValidationError, *, unprocessable: dict[str, str] | None = None) -> Refused:
    """A service's refusal (a ValidationError with a code) as the API answers it: 422 naming the field
    for the codes in `unprocessable` ({code: field}), 409 for the rest (a rule refuses it now)."""
    code = error.code or "refused"
    field = (unprocessable or {}).get(code)
    if field:
        return Refused(422, code, error.messages[0], field=field)
    return Refused(409, code, error.messages[0])


def whatsapp_failed(error: GraphAPIError) -> Refused:
    """WhatsApp's refusal as the API answers it: 502, what it means for people, and Meta's own."""
    return Refused(502, "whatsapp_error", error.meaning, whatsapp_code=error.code, whatsapp_error=str(error))
