from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from core.forms import AdminSignInForm
from core.views import SignInView, healthz, metrics

# Admin's sign-in goes through the same throttle as /login/ and the call widget's (core.signins).
admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("", include("agents.urls")),
    path("", include("whatsapp.urls")),
    path("", include("calls.urls")),
    path("", include("compliance.urls")),
    path("", include("messaging.urls")),
    path("", include("recordings.urls")),
    path("", include("campaigns.urls")),
    path("", include("integrations.urls")),
    path("", include("integrations.widget_urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]

handler404 = "core.views.not_found"
