from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from agents.selectors import agent_day, agent_for_user, numbers_for_agent
from core.webrtc import browser_ice_servers


@login_required
def dashboard(request):
    agent = agent_for_user(user=request.user)
    numbers = list(numbers_for_agent(agent_id=agent.pk)) if agent else []
    return render(
        request,
        "agents/dashboard.html",
        {
            "agent": agent,
            "numbers": numbers,
            "ice_servers": browser_ice_servers(),
            "my_day": agent_day(agent_id=agent.pk) if agent else None,
        },
    )
