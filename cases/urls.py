from django.urls import path

from cases import views, views_inbox, views_managers, views_queue, views_replies

app_name = "cases"

urlpatterns = [
    path("", views_queue.home, name="home"),
    path("queue/bulk/", views_queue.queue_bulk, name="queue_bulk"),
    path("cases/<int:pk>/", views.case_detail, name="case_detail"),
    path("cases/<int:pk>/note/", views.case_note, name="case_note"),
    path("cases/<int:pk>/status/", views.case_status, name="case_status"),
    path("cases/<int:pk>/take/", views.case_take, name="case_take"),
    path("cases/<int:pk>/assign/", views.case_assign, name="case_assign"),
    # The ladder's actions (POST only; the panel on the case page shows those the user may take).
    path("cases/<int:pk>/send-proposed/", views.case_send_proposed, name="case_send_proposed"),
    path("cases/<int:pk>/propose/", views.case_propose, name="case_propose"),
    path("cases/<int:pk>/cancel-scheduled/", views.case_cancel_scheduled, name="case_cancel_scheduled"),
    path("cases/<int:pk>/reinstate/", views.case_reinstate, name="case_reinstate"),
    path("cases/<int:pk>/hold/", views.case_hold, name="case_hold"),
    path("cases/<int:pk>/release-hold/", views.case_release_hold, name="case_release_hold"),
    path("cases/<int:pk>/de-escalate/", views.case_de_escalate, name="case_de_escalate"),
    path("cases/<int:pk>/merge/", views.case_merge, name="case_merge"),
    path("reports/<int:pk>/confirm/", views.report_confirm, name="report_confirm"),
    path("reports/<int:pk>/reject/", views.report_reject, name="report_reject"),
    path("approvals/", views.approval_queue, name="approval_queue"),
    path("approvals/<int:pk>/approve/", views.approval_approve, name="approval_approve"),
    path("approvals/<int:pk>/refuse/", views.approval_refuse, name="approval_refuse"),
    path("customers/<int:customer>/timeline/", views.customer_timeline, name="customer_timeline"),
    # Customers' replies and links (POST only; the replies panel on the case page).
    path("cases/<int:pk>/revoke-links/", views_replies.case_revoke_links, name="case_revoke_links"),
    path("replies/<int:pk>/review/", views_replies.reply_review, name="reply_review"),
    path("messages/", views_inbox.message_list, name="message_list"),
    path("messages/set-aside/", views_inbox.message_set_aside, name="message_set_aside"),
    path("messages/restore/", views_inbox.message_restore, name="message_restore"),
    path("messages/<int:pk>/", views.message_detail, name="message_detail"),
    path("messages/<int:pk>/raw/", views.message_raw, name="message_raw"),
    path("messages/<int:pk>/reparse/", views.message_reparse, name="message_reparse"),
    path("messages/<int:pk>/event/", views.message_add_event, name="message_add_event"),
    path("complaints/new/", views.complaint_new, name="complaint_new"),
    path("upload/", views.upload, name="upload"),
    path("unassigned/", views_inbox.unassigned, name="unassigned"),
    path("unassigned/re-resolve/", views_inbox.unassigned_reresolve, name="unassigned_reresolve"),
    path("unassigned/dismiss/", views_inbox.unassigned_dismiss, name="unassigned_dismiss"),
    path("unassigned/refer/", views_inbox.unassigned_refer, name="unassigned_refer"),
    # Managers' numbers and escalation history (managers and admins only).
    path("numbers/", views_managers.numbers, name="manager_numbers"),
    path("numbers/history/", views_managers.history, name="manager_history"),
    path("numbers/history.csv", views_managers.history_csv, name="manager_history_csv"),
]
