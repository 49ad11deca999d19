from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from agents.selectors import agent_for_user
from core.webrtc import browser_ice_servers


@login_required
def dashboard(request):
    agent = agent_for_user(user=request.user)
    return render(request, "agents/dashboard.html", {"agent": agent, "ice_servers": browser_ice_servers()})
