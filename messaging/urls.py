from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("reports/costs/", views.costs, name="costs"),
    path("messages/<int:pk>/media/", views.message_media, name="message-media"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/list/", views.inbox_list, name="inbox-list"),
    path("inbox/<int:pk>/", views.conversation, name="conversation"),
    path("inbox/<int:pk>/thread/", views.conversation_thread, name="conversation-thread"),
    path("inbox/<int:pk>/claim/", views.conversation_claim_view, name="conversation-claim"),
    path("inbox/<int:pk>/close/", views.conversation_close_view, name="conversation-close"),
    path("inbox/<int:pk>/transfer/", views.conversation_transfer_view, name="conversation-transfer"),
    path("inbox/<int:pk>/read/", views.conversation_read_view, name="conversation-read"),
    path("inbox/<int:pk>/reply/", views.conversation_reply, name="conversation-reply"),
    path("inbox/<int:pk>/typing/", views.conversation_typing_view, name="conversation-typing"),
    path("inbox/<int:pk>/notes/", views.conversation_note_view, name="conversation-note"),
]
