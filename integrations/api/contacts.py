"""The CRM's contacts: each with its call permissions and conversation windows."""

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from compliance.models import CallPermission
from integrations.api.base import ApiView, PageSerializer, paged
from messaging.models import ConversationWindow


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
    """GET: a contact, with each of the caller's numbers' call permission and conversation windows."""

    class ContactStateSerializer(ContactSerializer):
        class NumberStateSerializer(serializers.Serializer):
            business_number_id = serializers.IntegerField()
            permission = serializers.CharField(
                help_text="none, requested, temporary, permanent, revoked, expired, rejected"
            )
            permission_expires_at = serializers.DateTimeField(allow_null=True)
            customer_service_until = serializers.DateTimeField(allow_null=True)
            free_entry_until = serializers.DateTimeField(allow_null=True)

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
        numbers = []
        for number_id in sorted(set(permissions) | set(windows)):
            permission, window = permissions.get(number_id), windows.get(number_id)
            numbers.append(
                {
                    "business_number_id": number_id,
                    "permission": permission.status if permission else CallPermission.Status.NONE,
                    "permission_expires_at": permission.meta_expires_at if permission else None,
                    "customer_service_until": window.customer_service_until if window else None,
                    "free_entry_until": window.free_entry_until if window else None,
                }
            )
        data = {**ContactSerializer(contact).data, "numbers": numbers}
        return Response(self.ContactStateSerializer(data).data)
