from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from agents.selectors import agent_for_user


@login_required
def dashboard(request):
    agent = agent_for_user(user=request.user)
    return render(request, "agents/dashboard.html", {"agent": agent})
