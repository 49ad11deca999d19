import pytest

from agents.tests.factories import AgentFactory, UserFactory


@pytest.mark.django_db
def test_dashboard_requires_login(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


@pytest.mark.django_db
def test_dashboard_shows_agent_presence(client):
    agent = AgentFactory(status="away", display_name="Amira Haddad")
    client.force_login(agent.user)

    response = client.get("/")

    content = response.content.decode()
    assert response.status_code == 200
    assert 'data-status="away"' in content
    assert "Amira Haddad" in content
    assert "agents/dashboard.js" in content


@pytest.mark.django_db
def test_dashboard_for_user_without_agent_profile(client):
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "has no agent profile" in content
    assert "agents/dashboard.js" not in content


@pytest.mark.django_db
def test_login_page_signs_in_an_agent(client):
    agent = AgentFactory()

    response = client.post("/login/", {"username": agent.user.username, "password": "correct-horse-battery"})

    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_dashboard_shows_the_agents_own_day(client):
    from django.utils import timezone

    from calls.models import Call
    from calls.tests.factories import CallFactory

    agent = AgentFactory(status="away")
    CallFactory(agent=agent, status=Call.Status.ENDED, connected_at=timezone.now())
    CallFactory(agent=AgentFactory(), status=Call.Status.ENDED, connected_at=timezone.now())
    client.force_login(agent.user)

    content = client.get("/").content.decode()

    assert '<strong data-role="calls-taken">1</strong> call taken' in content
    assert '<strong data-role="chats-closed">0</strong> chats closed' in content
