"""Contacts found or created for many people at once (a burst of callers)."""

import pytest

from calls.tests.factories import ContactFactory
from messaging.models import Contact
from messaging.services import contacts_get_or_create

pytestmark = pytest.mark.django_db


def test_known_and_new_people_in_two_statements(django_assert_num_queries):
    known = ContactFactory(wa_id="447700900001", name="Ada")

    with django_assert_num_queries(2):
        contacts = contacts_get_or_create(
            people={"447700900001": "Ada", "447700900002": "Grace", "5511912345678": ""}
        )

    assert contacts["447700900001"].pk == known.pk
    stored = {contact.wa_id: contact for contact in Contact.objects.all()}
    assert {wa_id: contact.pk for wa_id, contact in contacts.items()} == {
        wa_id: contact.pk for wa_id, contact in stored.items()
    }
    assert (stored["447700900002"].name, stored["447700900002"].country) == ("Grace", "GB")
    assert stored["5511912345678"].country == "BR"


def test_a_person_created_meanwhile_is_returned_not_duplicated(monkeypatch):
    # Another process creates the contact between this one's look and its insert.
    real_filter = Contact.objects.filter

    def filter_then_someone_else_creates(*args, **kwargs):
        found = list(real_filter(*args, **kwargs))
        Contact.objects.get_or_create(wa_id="447700900003", defaults={"name": "Elsewhere"})
        return found

    monkeypatch.setattr(Contact.objects, "filter", filter_then_someone_else_creates)

    contacts = contacts_get_or_create(people={"447700900003": "Katherine"})
    monkeypatch.undo()

    assert Contact.objects.filter(wa_id="447700900003").count() == 1
    assert contacts["447700900003"].pk == Contact.objects.get(wa_id="447700900003").pk


def test_a_new_name_is_kept():
    ContactFactory(wa_id="447700900004", name="Old name")

    contacts_get_or_create(people={"447700900004": "New name", "447700900005": "Someone"})

    assert Contact.objects.get(wa_id="447700900004").name == "New name"
