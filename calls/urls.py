from django.urls import path

from calls import views

app_name = "calls"

urlpatterns = [
    path("wallboard/", views.wallboard, name="wallboard"),
    path("contacts/", views.contacts, name="contacts"),
    path("contacts/<int:pk>/", views.contact, name="contact"),
    path("contacts/<int:pk>/messages/", views.contact_message, name="contact-message"),
    path("reports/kpis.csv", views.kpis_csv, name="kpis-csv"),
]
