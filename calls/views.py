from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render

from calls.selectors import wallboard_snapshot


@staff_member_required
def wallboard(request):
    return render(request, "calls/wallboard.html", {"snapshot": wallboard_snapshot()})
