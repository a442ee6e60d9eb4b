from django.urls import path

from . import card_views, retry_policy, views

app_name = "recurring"
urlpatterns = [
    path("recurring/", views.billing_list, name="billings"),
    path("recurring/preview/", views.schedule_preview, name="preview"),
    path("recurring/<int:pk>/schedule/", views.billing_schedule, name="schedule"),
    path("recurring/<int:pk>/status/", views.billing_status, name="status"),
    path("recurring/<int:pk>/type/", views.billing_type, name="type"),
    path("recurring/<int:pk>/delete/", views.billing_delete, name="delete"),
    path("recurring/<int:pk>/card/", card_views.billing_card, name="card"),
    path("recurring/<int:pk>/card/send/", card_views.billing_card_send, name="card_send"),
    path("void/cancel-execute-date/", views.cancel_execute_date, name="cancel"),
    path("registration/", views.registration_list, name="registrations"),
    path("registration/link/", views.registration_link, name="registration_link"),
    path("register/<str:token>/", views.hosted_register, name="hosted"),
    path("register/<str:token>/preview/", views.hosted_preview, name="hosted_preview"),
    path("card/<str:token>/", card_views.card_update, name="card_update"),
    path("account/retry-policy/", retry_policy.retry_policy, name="retry_policy"),
]
