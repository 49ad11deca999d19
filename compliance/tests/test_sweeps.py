import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from compliance.models import AuditEvent, CallPermission
from compliance.services import permissions_expire_due
from messaging.models import Contact
from whatsapp.tests.factories import BusinessNumberFactory

Status = CallPermission.Status


def many_permissions(*, due: int, not_due: int) -> None:
    """`due` temporary permissions past their deadline, `not_due` inside it, and some permanent ones."""
    number = BusinessNumberFactory()
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(wa_id=f"4477009{index:05d}") for index in range(due + not_due + 10)
    )
    deadlines = [now - timedelta(minutes=1)] * due + [now + timedelta(hours=1)] * not_due
    permissions = [
        CallPermission(business_number=number, contact=contact, status=Status.TEMPORARY, deadline_at=deadline)
        for contact, deadline in zip(contacts, deadlines, strict=False)
    ] + [
        CallPermission(business_number=number, contact=contact, status=Status.PERMANENT)
        for contact in contacts[due + not_due :]
    ]
    CallPermission.objects.bulk_create(permissions)


@pytest.mark.django_db
def test_sweep_expires_thousands_in_bounded_queries(told, django_assert_max_num_queries):
    many_permissions(due=2500, not_due=300)

    # A handful per batch of 500 (SQLite splits each batch's insert in four), not one per permission.
    with django_assert_max_num_queries(6 * 10):
        expired = permissions_expire_due()

    assert expired == 2500
    assert CallPermission.objects.filter(status=Status.EXPIRED).count() == 2500
    assert CallPermission.objects.filter(status=Status.TEMPORARY).count() == 300
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPIRED).count() == 2500
    assert sum(len(ids) for ids in told) == 0  # told after commit only: the test's transaction never commits
    assert permissions_expire_due() == 0


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_expire_each_permission_once():
    many_permissions(due=3000, not_due=100)
    counts, failures = [], []
    start = threading.Barrier(2)

    def sweep() -> None:
        try:
            start.wait()
            counts.append(permissions_expire_due(batch_size=200))
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sum(counts) == 3000
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPIRED).count() == 3000
    assert CallPermission.objects.filter(status=Status.EXPIRED).count() == 3000
    if connection.vendor == "postgresql":
        assert min(counts) > 0  # both sweeps did part of the work (SKIP LOCKED), neither waited
