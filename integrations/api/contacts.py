"""The CRM's contacts: each with its call permissions, conversation windows and marketing preferences."""

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from compliance.models import CallPermission
from integrations.api.base import ApiView, PageSerializer, paged
from messaging.models import ConversationWindow, MarketingPreference
from messaging.selectors import marketing_of_contact


class ContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    wa_id = serializers.CharField(help_text="WhatsApp id: the number in international format, without '+'.")
    name = serializers.CharField()
    country = serializers.CharField()
    created_at = serializers.DateTimeField()


class ContactListApi(ApiView):
    """GET: the contacts of the caller's numbers, newest first; `q` finds a name or number."""

    class FilterSerializer(PageSerializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=64)

    @extend_schema(
        operation_id="contacts_list",
        parameters=[FilterSerializer],
        responses={200: paged("ContactPage", ContactSerializer(many=True))},
    )
    def get(self, request):
        contacts = self.caller().contacts()
        if text := self.query(self.FilterSerializer).get("q", "").strip():
            contacts = contacts.filter(
                Q(name__icontains=text) | Q(wa_id__contains=text.lstrip("+").replace(" ", ""))
            )
        return self.page(
            contacts,
            ordering=("-created_at", "-id"),
            serializer=ContactSerializer,
        )


class ContactDetailApi(ApiView):
    """GET: a contact, with each of the caller's numbers' call permission, conversation windows and
    whether the customer takes marketing messages from it (with every change of that)."""

    class ContactStateSerializer(ContactSerializer):
        class NumberStateSerializer(serializers.Serializer):
            class MarketingChangeSerializer(serializers.Serializer):
                at = serializers.DateTimeField(help_text="When it changed (WhatsApp's time).")
                from_status = serializers.CharField(help_text="allowed, stopped, or empty: first news.")
                to_status = serializers.CharField(help_text="allowed or stopped")
                source = serializers.CharField(
                    help_text="user_preferences (webhook), system_message, or meta_refusal (error 131050)"
                )
                detail = serializers.CharField(help_text="WhatsApp's description of the change.")

            business_number_id = serializers.IntegerField()
            permission = serializers.CharField(
                help_text="none, requested, temporary, permanent, revoked, expired, rejected"
            )
            permission_expires_at = serializers.DateTimeField(allow_null=True)
            customer_service_until = serializers.DateTimeField(allow_null=True)
            free_entry_until = serializers.DateTimeField(allow_null=True)
            marketing = serializers.ChoiceField(
                choices=MarketingPreference.Status.values,
                help_text="stopped: the customer stopped marketing templates from this number in WhatsApp "
                "(they are refused, 409 marketing_stopped); allowed otherwise.",
            )
            marketing_stopped_since = serializers.DateTimeField(allow_null=True)
            marketing_changes = MarketingChangeSerializer(many=True, help_text="Newest first.")

        numbers = NumberStateSerializer(many=True)

    @extend_schema(responses={200: ContactStateSerializer})
    def get(self, request, pk: int):
        caller = self.caller()
        contact = get_object_or_404(caller.contacts(), pk=pk)
        permissions = {
            permission.business_number_id: permission
            for permission in CallPermission.objects.filter(
                contact=contact, business_number_id__in=caller.number_ids
            )
        }
        windows = {
            window.business_number_id: window
            for window in ConversationWindow.objects.filter(
                contact=contact, business_number_id__in=caller.number_ids
            )
        }
        marketing = marketing_of_contact(viewer=caller, contact_id=contact.pk)
        numbers = []
        for number_id in sorted(set(permissions) | set(windows) | set(marketing.by_number)):
            permission, window = permissions.get(number_id), windows.get(number_id)
            preference = marketing.by_number.get(number_id)
            numbers.append(
                {
                    "business_number_id": number_id,
                    "permission": permission.status if permission else CallPermission.Status.NONE,
                    "permission_expires_at": permission.meta_expires_at if permission else None,
                    "customer_service_until": window.customer_service_until if window else None,
                    "free_entry_until": window.free_entry_until if window else None,
                    "marketing": preference.status if preference else MarketingPreference.Status.ALLOWED,
                    "marketing_stopped_since": preference.since
                    if preference and preference.is_stopped
                    else None,
                    "marketing_changes": [
                        change
                        for change in marketing.history
                        if change.preference.business_number_id == number_id
                    ],
                }
            )
        data = {**ContactSerializer(contact).data, "numbers": numbers}
        return Response(self.ContactStateSerializer(data).data)
