from django.urls import path

from . import views

app_name = "payments"
urlpatterns = [
    path("void/", views.void_search, name="void"),
    path("void/<int:pk>/void/", views.void_transaction, name="void_transaction"),
    path("void/<int:pk>/refund/", views.refund_transaction, name="refund_transaction"),
    path("account/callbacks/", views.callback_list, name="callbacks"),
    path("account/callbacks/<int:pk>/", views.callback_detail, name="callback_detail"),
    path("account/callbacks/<int:pk>/resend/", views.callback_resend, name="callback_resend"),
]
