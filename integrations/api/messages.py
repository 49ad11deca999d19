"""Messages: the threads' list; sending text, templates and call buttons, with the window and the
price."""

import hashlib
import re

from django.core.exceptions import ValidationError
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.response import Response

from compliance.services import call_button_send
from core.access import Viewer
from integrations.api.base import (
    TO_HELP,
    UNPROCESSABLE,
    WHATSAPP_FAILED,
    ApiView,
    IdField,
    PageSerializer,
    ProblemSerializer,
    Refused,
    customer_wa_id,
    filtered,
    paged,
    refused_by_service,
    whatsapp_failed,
)
from integrations.models import ApiKey
from messaging.models import Charge, Message, RateCard, Template
from messaging.selectors import SendOptions, send_options
from messaging.services import (
    contact_get_or_create,
    message_send_template,
    message_send_text,
)
from whatsapp.errors import GraphAPIError


class MessageMediaSerializer(serializers.Serializer):
    """The file a customer sent: fetched from WhatsApp and stored here, or not (yet)."""

    status = serializers.ChoiceField(choices=Message.MediaStatus.choices)
    is_stored = serializers.BooleanField()
    mime_type = serializers.CharField()
    filename = serializers.CharField(help_text="A document's name, as the customer sent it.")
    size = serializers.IntegerField(allow_null=True, help_text="Bytes, once stored.")
    error = serializers.CharField(help_text="Why it could not be fetched.")


class MessageReactionSerializer(serializers.Serializer):
    message_id = serializers.CharField(help_text="WhatsApp's id of the message reacted to.")
    emoji = serializers.CharField(help_text="Empty: the customer took the reaction back.")


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    business_number_id = serializers.IntegerField()
    contact_id = serializers.IntegerField()
    direction = serializers.ChoiceField(choices=Message.Direction.choices)
    type = serializers.CharField(
        help_text="Meta's type: text, template, interactive, button, image, audio, video, document, sticker, "
        "location, contacts, reaction, order, system, unsupported, …"
    )
    text = serializers.CharField(
        help_text="The text, the template's name, or what the thread shows of another type (a caption, a "
        "place, a contact card, a reaction, an order, why WhatsApp could not show it)."
    )
    status = serializers.ChoiceField(choices=Message.Status.choices)
    error = serializers.CharField(help_text="Meta's reason, when it failed or WhatsApp could not show it.")
    note = serializers.CharField(help_text="What could not be read of a customer's message.")
    media = MessageMediaSerializer(allow_null=True, help_text="The file of an image, audio, video, …")
    reaction = MessageReactionSerializer(allow_null=True)
    wa_message_id = serializers.CharField(allow_null=True, help_text="Meta's id, once Meta took it.")
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(
        allow_null=True, help_text="When Meta took it (the business's), or the customer sent it (theirs)."
    )
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)


MESSAGE_FIELDS = (
    "id", "business_number_id", "contact_id", "direction", "status", "error", "note", "wa_message_id",
    "created_at", "sent_at", "delivered_at", "read_at", "failed_at",
)  # fmt: skip


def _message_data(message: Message, caller: Viewer) -> dict:
    text = caller.text(message.text, country=message.contact.country)
    media = None
    if message.media_status:
        media = {
            "status": message.media_status, "is_stored": message.media_status == Message.MediaStatus.STORED,
            "mime_type": message.mime_type, "size": message.media_size,
            "filename": caller.text(message.media_filename, country=message.contact.country),
            "error": message.media_error,
        }  # fmt: skip
    reaction = None
    if message.message_type == "reaction":
        reaction = {"message_id": message.reacts_to, "emoji": message.emoji}
    return {
        **{name: getattr(message, name) for name in MESSAGE_FIELDS},
        "type": message.message_type,
        "text": text,
        "media": media,
        "reaction": reaction,
    }


class WindowSerializer(serializers.Serializer):
    customer_service_until = serializers.DateTimeField(
        allow_null=True,
        help_text="Free-form messages until then (24 h from the customer's last message or call).",
    )
    is_service_window_open = serializers.BooleanField()
    free_entry_until = serializers.DateTimeField(
        allow_null=True, help_text="Every message is free until then (a click-to-WhatsApp ad's window)."
    )
    is_free_entry_open = serializers.BooleanField()


class PriceSerializer(serializers.Serializer):
    category = serializers.CharField(
        help_text="Meta's pricing category: marketing, utility, authentication, service."
    )
    pricing_type = serializers.CharField(
        help_text="regular (charged), free_customer_service or free_entry_point."
    )
    billing = serializers.ChoiceField(
        choices=["free", "charged", "unpriced"],
        help_text="unpriced: charged by Meta, but no rate card row prices it yet.",
    )
    amount = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    currency = serializers.CharField(help_text="The account's billing currency.")


class MessageRefusedSerializer(ProblemSerializer):
    window = WindowSerializer(required=False, help_text="With outside_service_window: the windows now.")


def _window(options: SendOptions) -> dict:
    return {
        "customer_service_until": options.customer_service_until,
        "is_service_window_open": options.is_service_window_open,
        "free_entry_until": options.free_entry_until,
        "is_free_entry_open": options.is_free_entry_open,
    }


def _price(options: SendOptions, category: str) -> dict:
    """What a message of `category` costs by the windows and rate cards when it was sent."""
    quote = options.quotes.get(category)
    if quote is None:
        return {"category": category, "pricing_type": Charge.PricingType.REGULAR, "billing": "unpriced",
                "amount": None, "currency": options.currency}  # fmt: skip
    if quote.amount is None:
        billing = "unpriced"
    elif quote.pricing_type == Charge.PricingType.REGULAR:
        billing = "charged"
    else:
        billing = "free"
    amount = None if quote.amount is None else quote.amount.amount
    return {"category": category, "pricing_type": quote.pricing_type, "billing": billing, "amount": amount,
            "currency": options.currency}  # fmt: skip


def _category_sent(message: Message, *, waba_id: str) -> str:
    """The pricing category of a message the compliance fallback sent: a free-form one is a service
    message; once the window has closed it went as the configured template, priced by its category."""
    if message.message_type != "template":
        return RateCard.Category.SERVICE
    sent = (message.request or {}).get("template", {})
    template = Template.objects.filter(
        waba_id=waba_id, name=sent.get("name", ""), language=sent.get("language", {}).get("code", "")
    ).first()
    return template.category if template else ""


MESSAGE_TYPES = ("text", "template", "call_button")
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"  # printable ASCII, as an HTTP header carries it


class MessageSendSerializer(serializers.Serializer):
    """What every message to send says; each type adds its own (`SEND_BODIES`)."""

    business_number_id = IdField()
    to = serializers.CharField(trim_whitespace=False, max_length=40, help_text=TO_HELP)
    type = serializers.ChoiceField(choices=MESSAGE_TYPES)
    idempotency_key = serializers.RegexField(
        IDEMPOTENCY_KEY_PATTERN, required=False, help_text="Or the Idempotency-Key header."
    )


class TextSendSerializer(MessageSendSerializer):
    type = serializers.ChoiceField(choices=["text"])
    text = serializers.CharField(
        trim_whitespace=False, max_length=4096, help_text="Only inside the customer's 24-hour window."
    )


class TemplateSendSerializer(MessageSendSerializer):
    class MessageTemplateSerializer(serializers.Serializer):
        name = serializers.RegexField(r"^[a-z0-9_]{1,512}$", help_text="Lower-case letters, digits and _.")
        language = serializers.RegexField(
            r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", max_length=16, help_text="Meta's language code, e.g. en_US."
        )

    type = serializers.ChoiceField(choices=["template"])
    template = MessageTemplateSerializer(help_text="An approved template of the number's account.")
    parameters = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False, max_length=1024), required=False, max_length=100,
        help_text="The template body's parameters, in order.",
    )  # fmt: skip


class CallButtonSendSerializer(MessageSendSerializer):
    """A "Call us" button: free-form inside the window, else the configured template; sent at once,
    so never under an idempotency key."""

    type = serializers.ChoiceField(choices=["call_button"])


SEND_BODIES = {
    "text": TextSendSerializer,
    "template": TemplateSendSerializer,
    "call_button": CallButtonSendSerializer,
}


class MessageListApi(ApiView):
    """GET: messages of the caller's numbers, both ways, newest first; cursor pages.
    POST (the `messages:write` scope): send a text (inside the customer's 24-hour window only), an
    approved template, or a "Call us" button. The answer says the windows and what the message
    costs. A text or template sent again under the same idempotency key (the body's or the
    `Idempotency-Key` header) is the same message, sent once."""

    write_scope = ApiKey.Scope.MESSAGES_WRITE
    operations = {"POST": "messages.create"}

    class FilterSerializer(PageSerializer):
        contact = IdField(required=False)
        number = IdField(required=False, help_text="A business number's id.")
        direction = serializers.ChoiceField(choices=Message.Direction.choices, required=False)

    class MessageSentSerializer(MessageSerializer):
        window = WindowSerializer(help_text="The windows when it was sent.")
        price = PriceSerializer(help_text="What Meta charges for it, by the windows and the rate cards.")

    @extend_schema(
        operation_id="messages_list",
        parameters=[FilterSerializer],
        responses={200: paged("MessagePage", MessageSerializer(many=True))},
    )
    def get(self, request):
        caller = self.caller()
        messages = filtered(
            Message.objects.filter(business_number_id__in=caller.number_ids),
            self.query(self.FilterSerializer),
            {"contact": "contact_id", "number": "business_number_id", "direction": "direction"},
        )
        return self.page(
            messages.select_related("contact"),
            ordering=("-created_at", "-id"),
            serializer=MessageSerializer,
            row=lambda message: _message_data(message, caller),
        )

    @extend_schema(
        operation_id="messages_create",
        request=PolymorphicProxySerializer(
            "MessageSend", serializers=SEND_BODIES, resource_type_field_name="type"
        ),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key", str, OpenApiParameter.HEADER, pattern=IDEMPOTENCY_KEY_PATTERN,
                description="Sending again under the same key answers with the same message, sent once.",
            )
        ],
        responses={
            201: MessageSentSerializer,
            409: OpenApiResponse(
                MessageRefusedSerializer,
                description="Not now: outside_service_window (a text, with the windows: send a template), "
                "marketing_stopped (a marketing template to a customer who stopped marketing messages "
                "from the number), window_closed (a call button, and no template configured), no_fallback.",
            ),
            422: UNPROCESSABLE,
            **WHATSAPP_FAILED,
        },
    )  # fmt: skip
    def post(self, request):
        kind = request.data.get("type") if isinstance(request.data, dict) else None
        body = SEND_BODIES.get(kind if isinstance(kind, str) else "", MessageSendSerializer)(
            data=request.data
        )
        body.is_valid(raise_exception=True)
        wanted = body.validated_data
        key = self._idempotency_key(wanted.get("idempotency_key", ""))
        number = self.business_number(wanted["business_number_id"])
        wa_id = customer_wa_id(wanted["to"], number=number)
        template = None
        if wanted["type"] == "template":
            template = Template.objects.filter(
                waba_id=number.waba_id,
                name=wanted["template"]["name"],
                language=wanted["template"]["language"],
            ).first()
            if template is None:
                raise Refused(
                    422, "unknown_template", "The number's account has no such template.", field="template"
                )
        if wanted["type"] == "call_button" and key:
            raise Refused(
                422, "idempotency_key", "A call button is sent at once, never under an idempotency key.",
                field="idempotency_key",
            )  # fmt: skip
        contact = contact_get_or_create(wa_id=wa_id)
        self.note(contact=contact.pk)
        options = send_options(business_number=number, contact=contact)
        sent_by = None if self.caller().key else request.user
        try:
            if wanted["type"] == "text":
                message = message_send_text(
                    business_number=number, contact=contact, text=wanted["text"], idempotency_key=key,
                    sent_by=sent_by,
                )  # fmt: skip
            elif template is not None:
                message = message_send_template(
                    business_number=number, contact=contact, template=template,
                    parameters=wanted.get("parameters"), idempotency_key=key, sent_by=sent_by,
                )  # fmt: skip
            else:
                wa_message_id = call_button_send(business_number=number, contact=contact)
                message = Message.objects.get(wa_message_id=wa_message_id)
        except ValidationError as error:
            refused = refused_by_service(
                error, unprocessable={"template": "template", "idempotency_key": "idempotency_key"}
            )
            if error.code == "outside_service_window":
                refused.body["window"] = WindowSerializer(_window(options)).data
            raise refused from None
        except GraphAPIError as error:
            raise whatsapp_failed(error) from None
        self.note(message=message.pk)
        message.contact = contact
        category = template.category if template else _category_sent(message, waba_id=number.waba_id)
        data = {
            **_message_data(message, self.caller()),
            "window": _window(options),
            "price": _price(options, category),
        }
        return Response(self.MessageSentSerializer(data).data, status=201)

    def _idempotency_key(self, in_body: str) -> str:
        """The caller's key (header or body) as stored: one CRM's keys never meet another's."""
        in_header = self.request.headers.get("Idempotency-Key", "")
        if in_header and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, in_header):
            raise serializers.ValidationError(
                {"Idempotency-Key": ["Printable ASCII, 255 characters at most."]}
            )
        if in_header and in_body and in_header != in_body:
            raise Refused(
                422, "idempotency_key", "The Idempotency-Key header and the body's idempotency_key differ.",
                field="idempotency_key",
            )  # fmt: skip
        given = in_header or in_body
        if not given:
            return ""
        caller = self.caller()
        owner = f"key:{caller.key.pk}" if caller.key else f"user:{self.request.user.pk}"
        return hashlib.sha256(f"{owner}:{given}".encode()).hexdigest()  # 64 characters, as stored
