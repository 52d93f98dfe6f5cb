from django.urls import path

from cases import views

app_name = "cases"

urlpatterns = [
    path("", views.home, name="home"),
    path("cases/<int:pk>/", views.case_detail, name="case_detail"),
    path("cases/<int:pk>/note/", views.case_note, name="case_note"),
    path("cases/<int:pk>/status/", views.case_status, name="case_status"),
    path("cases/<int:pk>/take/", views.case_take, name="case_take"),
    path("messages/", views.message_list, name="message_list"),
    path("messages/<int:pk>/", views.message_detail, name="message_detail"),
    path("messages/<int:pk>/raw/", views.message_raw, name="message_raw"),
    path("messages/<int:pk>/reparse/", views.message_reparse, name="message_reparse"),
    path("messages/<int:pk>/event/", views.message_add_event, name="message_add_event"),
    path("complaints/new/", views.complaint_new, name="complaint_new"),
    path("upload/", views.upload, name="upload"),
    path("unassigned/", views.unassigned, name="unassigned"),
]
