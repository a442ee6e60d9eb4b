from django.urls import path

from . import views

app_name = "batch"
urlpatterns = [
    path("batch/single-payment/", views.single_payment, name="single_payment"),
    path("batch/registration/", views.registration, name="registration"),
    path("batch/<int:pk>/", views.detail, name="detail"),
    path("batch/<int:pk>/progress/", views.progress, name="progress"),
    path("batch/<int:pk>/process/", views.process, name="process"),
    path("batch/template/<str:kind>.<str:file_format>", views.template, name="template"),
]
