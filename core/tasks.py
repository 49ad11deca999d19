from celery import shared_task


@shared_task(name="core.ping", ignore_result=False)
def ping(*, token: str) -> str:
    """Echo `token`: proves a worker took a task from the broker and wrote the result back."""
    return token
