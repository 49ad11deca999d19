from celery import shared_task


@shared_task(name="compliance.expire_permissions")
def expire_permissions() -> int:
    """Beat: temporary call permissions past their deadline become `expired` (idempotent)."""
    from compliance.services import permissions_expire_due

    return permissions_expire_due()
